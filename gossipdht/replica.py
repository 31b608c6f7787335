"""A replica, local or across the network, behind one interface.

The coordinator, anti-entropy and handoff talk to the replicas of a key without
caring where they are: ``LocalReplica`` is this node's store, ``RemoteReplica`` another
node's internal API.  Single-key reads and writes to a remote node are batched: the
ones of a reactor turn share one request.

A write answers ``None`` when every record was stored (or was there already); when a
newer version already stored beat some, it answers, for each write, that version (or
None): the coordinator then writes again above it (see ``coordinator``).
"""

from __future__ import annotations

from typing import Awaitable, Callable, Iterator, Optional, Sequence, Union

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred, succeed

from gossipdht.batcher import Batcher
from gossipdht.committer import THREADED_ITEMS, GroupCommitter
from gossipdht.hlc import HybridLogicalClock, Version
from gossipdht.peer import PeerError
from gossipdht.request import BATCH_BYTES
from gossipdht.rpc import Handler, RpcClient
from gossipdht.stats import DataStats
from gossipdht.storage import Record, Store, TokenRange
from gossipdht.transfer import (
    BadMessage, Write, pack_digests, pack_keys, pack_scan, pack_records, pack_versions, pack_writes,
    unpack_digests, unpack_keys, unpack_scan, unpack_records, unpack_versions, unpack_writes,
)

#: What ``write`` answers: None, or for each write the newer version that beat it.
Beaten = Optional[list[Optional[Version]]]
#: Keys or records in one request between nodes.
BATCH_ITEMS = 1000
#: Records removed per transaction: the commits of requests wait for the one in progress.
REMOVE_STEP = 2000
#: Batches to one peer in flight at once; more writes wait and join the next batch.
IN_FLIGHT_PER_PEER = 4
REQUEST_SECONDS = 2.0
BULK_SECONDS = 30.0


def chunks(writes: Sequence[Write]) -> Iterator[list[Write]]:
    """Slices of at most ``BATCH_ITEMS`` records and about ``BATCH_BYTES`` of values."""
    chunk: list[Write] = []
    size = 0
    for write in writes:
        if chunk and (len(chunk) >= BATCH_ITEMS or size + len(write[1].value) > BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(write)
        size += len(write[1].value)
    if chunk:
        yield chunk


class LocalReplica:
    """This node's store, seen as one of the replicas.

    Scans (many records, digests, versions) and the removal of many records take
    milliseconds to seconds: ``in_thread`` (``deferToThread`` in a node) runs them off the
    reactor thread when the store allows, so that they delay neither requests nor gossip."""

    def __init__(self, name: str, store: Store, committer: GroupCommitter, clock: HybridLogicalClock,
                 stats: DataStats, in_thread: Optional[Callable[..., Deferred]] = None) -> None:
        self.name = name
        self.store = store
        self._committer = committer
        self._clock = clock
        self._stats = stats
        self._in_thread = in_thread if in_thread is not None and store.threaded else maybeDeferred
        #: Told the keys of every handoff this node receives (see ``push``).
        self.on_push: Callable[[list[str]], None] = lambda keys: None

    def push(self, writes: Sequence[Write]) -> Deferred[Beaten]:
        """Apply a handoff from a node that drops its copies once acknowledged.

        The sender chose this node by its own ring; if this node's ring says otherwise,
        it now holds the only copies and must move them on."""
        self.on_push([key for key, _, _ in writes])
        return self.write(writes)

    def write(self, writes: Sequence[Write]) -> Deferred[Beaten]:
        """Apply the writes; a write with a hint is kept for that node instead."""
        if len(writes) == 1 and writes[0][2] in (None, self.name):  # the hot path: no gathering
            key, record, _ = writes[0]
            self._clock.observe(record.version.timestamp)
            return self._committer.write(key, record).addCallback(_one)
        if writes:
            self._clock.observe(max(r.version.timestamp for _, r, _ in writes))
        hinted: dict[str, list[tuple[str, Record]]] = {}
        plain = []
        for key, record, hint in writes:
            if hint is None or hint == self.name:
                plain.append((key, record))
            else:
                hinted.setdefault(hint, []).append((key, record))
        for target, items in hinted.items():
            self.store.add_hints(target, items)
            self._stats.hints_stored += len(items)
        if not hinted:
            return self._committer.write_many(plain)

        def aligned(beaten: Beaten) -> Beaten:  # hints are not compared with anything
            if beaten is None:
                return None
            found = iter(beaten)
            return [next(found) if hint is None or hint == self.name else None for _, _, hint in writes]
        return self._committer.write_many(plain).addCallback(aligned)

    def read_one(self, key: str) -> Deferred[Optional[Record]]:
        return succeed(self.store.get(key))

    def read(self, keys: Sequence[str]) -> Deferred[list[Optional[Record]]]:
        return self._in_thread(self.store.get_many, keys)

    def digests(self, ranges: Sequence[TokenRange],
                before: Optional[int] = None) -> Deferred[list[tuple[int, int]]]:
        return self._in_thread(self.store.digests, ranges, before)

    def versions(self, ranges: Sequence[TokenRange],
                 before: Optional[int] = None) -> Deferred[list[tuple[str, Version]]]:
        return self._in_thread(self.store.versions, ranges, before)

    def remove(self, items: Sequence[tuple[str, Version]]) -> Deferred[int]:
        """Forget these versions of records (handed off); how many were still here.

        A transaction of ``REMOVE_STEP`` records at a time: the writes of requests wait
        for the one in progress, on the reactor thread."""
        async def steps() -> int:
            removed = 0
            for start in range(0, len(items), REMOVE_STEP):
                removed += await self._in_thread(self.store.remove, items[start:start + REMOVE_STEP])
            return removed
        return ensureDeferred(steps())

    def purge_tombstones(self, before: int) -> Deferred[int]:
        return self._in_thread(self.store.purge_tombstones, before)

    def hint_counts(self) -> Deferred[dict[str, int]]:
        return self._in_thread(self.store.hint_counts)

    def hints(self, target: str, limit: int) -> Deferred[list[tuple[str, Record]]]:
        return self._in_thread(self.store.hints, target, limit)

    def remove_hints(self, target: str, items: Sequence[tuple[str, Version]]) -> Deferred[None]:
        return self._in_thread(self.store.remove_hints, target, items)


class RemoteReplica:
    """Another node's store, through its internal API."""

    def __init__(self, name: str, address: tuple[str, int], rpc: RpcClient, clock) -> None:
        self.name = name
        self.address = address
        self._rpc = rpc
        self._writes: Batcher[Write, Optional[Version]] = Batcher(self._send_writes, clock, IN_FLIGHT_PER_PEER, BATCH_ITEMS,
                                                      lambda write: len(write[1].value), BATCH_BYTES)
        self._reads: Batcher[str, Optional[Record]] = Batcher(self._send_reads, clock, IN_FLIGHT_PER_PEER, BATCH_ITEMS)

    def _call(self, method: str, body: bytes, timeout: float) -> Awaitable[bytes]:
        return self._rpc.call(self.address, method, body, timeout)

    def read_one(self, key: str) -> Deferred[Optional[Record]]:
        return self._reads.submit(key)

    def _send_writes(self, writes: list[Write]) -> Deferred[Beaten]:
        return ensureDeferred(self._call("write", pack_writes(writes), REQUEST_SECONDS)).addCallback(
            _beaten_in, writes)

    def _send_reads(self, keys: list[str]) -> Deferred[list[Optional[Record]]]:
        return ensureDeferred(self._read(keys, REQUEST_SECONDS))

    async def _read(self, keys: Sequence[str], timeout: float) -> list[Optional[Record]]:
        """The records of ``keys``, asked again for the keys past an answer cut short."""
        found: list[Optional[Record]] = []
        while len(found) < len(keys):
            wanted = keys[len(found) :]
            records = _checked(unpack_records, await self._call("read", pack_keys(wanted), timeout))
            if not records or len(records) > len(wanted) or any(
                    r is not None and r[0] != k for r, k in zip(records, wanted)):
                raise PeerError(f"{self.name} answered a read with the wrong keys")
            found += [None if r is None else r[1] for r in records]
        return found

    def write(self, writes: Sequence[Write]) -> Deferred[Beaten]:
        """A single write joins the batch of this reactor turn; more go as they are."""
        if len(writes) == 1:
            return self._writes.submit(writes[0]).addCallback(_one)
        return ensureDeferred(self._write_bulk(writes))

    async def _write_bulk(self, writes: Sequence[Write], method: str = "write") -> Beaten:
        beaten: list[Optional[Version]] = []
        for chunk in chunks(writes):
            answer = _beaten_in(await self._call(method, pack_writes(chunk), BULK_SECONDS), chunk)
            beaten += [None] * len(chunk) if answer is None else answer
        return beaten if any(beaten) else None

    def push(self, writes: Sequence[Write]) -> Deferred[Beaten]:
        return ensureDeferred(self._write_bulk(writes, "push"))

    def read(self, keys: Sequence[str]) -> Deferred[list[Optional[Record]]]:
        return ensureDeferred(self._read_bulk(keys))

    async def _read_bulk(self, keys: Sequence[str]) -> list[Optional[Record]]:
        records: list[Optional[Record]] = []
        for start in range(0, len(keys), BATCH_ITEMS):
            records += await self._read(keys[start : start + BATCH_ITEMS], BULK_SECONDS)
        return records

    def digests(self, ranges: Sequence[TokenRange],
                before: Optional[int] = None) -> Deferred[list[tuple[int, int]]]:
        async def ask():
            body = await self._call("digests", pack_scan(ranges, before), BULK_SECONDS)
            return _checked(unpack_digests, body, len(ranges))
        return ensureDeferred(ask())

    def versions(self, ranges: Sequence[TokenRange],
                 before: Optional[int] = None) -> Deferred[list[tuple[str, Version]]]:
        async def ask():
            return _checked(unpack_versions, await self._call("versions", pack_scan(ranges, before), BULK_SECONDS))
        return ensureDeferred(ask())


def handlers(local: LocalReplica) -> dict[str, Handler]:
    """The calls a RemoteReplica makes, answered by this node's store."""
    store = local.store

    def write(body: bytes) -> Deferred[bytes]:
        """Empty when every record was stored; else the newer versions that beat some."""
        writes = unpack_writes(body)

        def answer(beaten: Beaten) -> bytes:
            if beaten is None:
                return b""
            return pack_versions([(key, version) for (key, _, _), version in zip(writes, beaten) if version])
        return local.write(writes).addCallback(answer)

    def read(body: bytes) -> Deferred[bytes]:
        """Records in order, cut short after about ``BATCH_BYTES`` of values.  Reads of
        many keys (anti-entropy) run as a scan, off the reactor thread when it can."""
        keys = unpack_keys(body)
        found = local.read(keys) if len(keys) >= THREADED_ITEMS else succeed([store.get(key) for key in keys])
        return found.addCallback(lambda records: pack_records(_cut(keys, records)))

    return {
        "write": write,
        "push": lambda body: local.push(unpack_writes(body)).addCallback(lambda _: b""),
        "read": read,
        "digests": lambda body: local.digests(*unpack_scan(body)).addCallback(pack_digests),
        "versions": lambda body: local.versions(*unpack_scan(body)).addCallback(pack_versions),
    }


def _cut(keys: Sequence[str], records: Sequence[Optional[Record]]) -> list[Optional[tuple[str, Record]]]:
    """The first records, up to about ``BATCH_BYTES`` of values (at least one)."""
    answer: list[Optional[tuple[str, Record]]] = []
    size = 0
    for key, record in zip(keys, records):
        size += 0 if record is None else len(record.value)
        if answer and size > BATCH_BYTES:
            break
        answer.append(None if record is None else (key, record))
    return answer


def _one(beaten: Optional[Version]) -> Beaten:
    return None if beaten is None else [beaten]


def _beaten_in(body: bytes, writes: Sequence[Write]) -> Beaten:
    """A write's answer: for each write, the newer version that beat it."""
    if not body:
        return None
    newer = dict(_checked(unpack_versions, body))
    return [newer[key] if key in newer and newer[key] > record.version else None for key, record, _ in writes]


def _checked(decode, *args):
    try:
        return decode(*args)
    except BadMessage as e:
        raise PeerError(f"bad answer from a peer: {e}") from None


Replica = Union[LocalReplica, RemoteReplica]


class Replicas:
    """The replica for each member name: this node's own store, or a client of another's."""

    def __init__(self, local: LocalReplica, addresses, rpc: RpcClient, clock) -> None:
        #: ``addresses(name)`` gives the member's API address.
        self.local = local
        self._addresses = addresses
        self._rpc = rpc
        self._clock = clock
        self._remote: dict[tuple[str, tuple[str, int]], RemoteReplica] = {}

    def __getitem__(self, name: str) -> Replica:
        if name == self.local.name:
            return self.local
        address = self._addresses(name)
        replica = self._remote.get((name, address))
        if replica is None:
            replica = self._remote[(name, address)] = RemoteReplica(name, address, self._rpc, self._clock)
        return replica
