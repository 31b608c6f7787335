"""Another node's replica over the internal RPC, and this node's served to the others.

Single-key reads and writes to a remote node are batched: the ones of a reactor turn
share one request.  Bulk ones travel in batches of ``gossipdht.core.batches``.

The time each batch of single-key reads and writes takes to be answered feeds a peak
EWMA (``gossipdht.core.peakewma``); times the items outstanding to the node, it is the
wait a read of it may expect, by which the coordinator picks the replicas it asks first
(the cost Finagle's and Linkerd's balancers rank servers by).
"""

from __future__ import annotations

from typing import Awaitable, Callable, Optional, Sequence

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred

from gossipdht.core.batches import BATCH_BYTES, BATCH_ITEMS, batches
from gossipdht.core.errors import PeerError
from gossipdht.core.hlc import Version
from gossipdht.core.peakewma import PeakEwma
from gossipdht.data.batcher import Batcher
from gossipdht.data.committer import THREADED_ITEMS
from gossipdht.data.replica import Beaten, LocalReplica, beaten_one
from gossipdht.net.messages import (
    BadMessage,
    pack_digests,
    pack_keys,
    pack_records,
    pack_scan,
    pack_versions,
    pack_writes,
    unpack_digests,
    unpack_keys,
    unpack_records,
    unpack_scan,
    unpack_versions,
    unpack_writes,
)
from gossipdht.net.rpc import Handler, RpcClient
from gossipdht.storage import Record, TokenRange, Write

#: Messages of this many records or more are encoded and decoded off the reactor thread
#: (``offload``), and bodies of this many bytes or more decoded there.
OFFLOAD_ITEMS = THREADED_ITEMS
OFFLOAD_BYTES = 64 << 10
#: Batches to one peer in flight at once; more writes wait and join the next batch.
IN_FLIGHT_PER_PEER = 4
REQUEST_SECONDS = 2.0
BULK_SECONDS = 30.0


def _value_bytes(write: Write) -> int:
    return len(write[1].value)


class RemoteReplica:
    """Another node's store, through its internal API."""

    def __init__(self, name: str, address: tuple[str, int], rpc: RpcClient, clock,
                 offload: Callable[..., Deferred] = maybeDeferred) -> None:
        """``offload(f, *args)`` runs the encoding and decoding of bulk messages
        (``deferToThread`` in a node)."""
        self.name = name
        self.address = address
        self._rpc = rpc
        self._clock = clock
        self._offload = offload
        self._answer_time = PeakEwma()
        self._writes: Batcher[Write, Optional[Version]] = Batcher(self._send_writes, clock, IN_FLIGHT_PER_PEER, BATCH_ITEMS,
                                                      _value_bytes, BATCH_BYTES)
        self._reads: Batcher[str, Optional[Record]] = Batcher(self._send_reads, clock, IN_FLIGHT_PER_PEER, BATCH_ITEMS)

    def expected_wait(self) -> float:
        """Its answer time so far, times the single reads and writes outstanding to it and one."""
        outstanding = self._writes.outstanding + self._reads.outstanding
        return self._answer_time.seconds(self._clock.seconds()) * (outstanding + 1)

    def _timed(self, sent: Deferred) -> Deferred:
        """``sent``, its answer time observed, whether it answered or failed."""
        started = self._clock.seconds()

        def observed(result):
            now = self._clock.seconds()
            self._answer_time.observe(now - started, now)
            return result
        return sent.addBoth(observed)

    def _call(self, method: str, body: bytes, timeout: float) -> Awaitable[bytes]:
        return self._rpc.call(self.address, method, body, timeout)

    def _codec(self, items: int, f: Callable, *args) -> Deferred:
        """``f(*args)``, off the reactor thread for a message of many items; a bad answer
        is a PeerError."""
        return (self._offload if items >= OFFLOAD_ITEMS else maybeDeferred)(_checked, f, *args)

    def read_one(self, key: str) -> Deferred[Optional[Record]]:
        return self._reads.submit(key)

    def _send_writes(self, writes: list[Write]) -> Deferred[Beaten]:
        return self._timed(ensureDeferred(self._call("write", pack_writes(writes), REQUEST_SECONDS))).addCallback(
            _beaten_in, writes)

    def _send_reads(self, keys: list[str]) -> Deferred[list[Optional[Record]]]:
        return self._timed(ensureDeferred(self._read(keys, REQUEST_SECONDS)))

    async def _read(self, keys: Sequence[str], timeout: float) -> list[Optional[Record]]:
        """The records of ``keys``, asked again for the keys past an answer cut short."""
        found: list[Optional[Record]] = []
        while len(found) < len(keys):
            wanted = keys[len(found) :]
            records = await self._codec(len(wanted), unpack_records, await self._call("read", pack_keys(wanted), timeout))
            if not records or len(records) > len(wanted) or any(
                    r is not None and r[0] != k for r, k in zip(records, wanted)):
                raise PeerError(f"{self.name} answered a read with the wrong keys")
            found += [None if r is None else r[1] for r in records]
        return found

    def write(self, writes: Sequence[Write]) -> Deferred[Beaten]:
        """A single write joins the batch of this reactor turn; more go as they are."""
        if len(writes) == 1:
            return self._writes.submit(writes[0]).addCallback(beaten_one)
        return ensureDeferred(self._write_bulk(writes))

    async def _write_bulk(self, writes: Sequence[Write], method: str = "write") -> Beaten:
        beaten: list[Optional[Version]] = []
        for chunk in batches(writes, _value_bytes, BATCH_ITEMS, BATCH_BYTES):
            body = await self._codec(len(chunk), pack_writes, chunk)
            answer = _beaten_in(await self._call(method, body, BULK_SECONDS), chunk)
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
            return await self._codec(len(ranges), unpack_digests, body, len(ranges))
        return ensureDeferred(ask())

    def versions(self, ranges: Sequence[TokenRange],
                 before: Optional[int] = None) -> Deferred[list[tuple[str, Version]]]:
        async def ask():
            body = await self._call("versions", pack_scan(ranges, before), BULK_SECONDS)
            return await self._codec(OFFLOAD_ITEMS, unpack_versions, body)  # versions of whole ranges
        return ensureDeferred(ask())


def handlers(local: LocalReplica) -> dict[str, Handler]:
    """The calls a RemoteReplica makes, answered by this node's store; bulk messages are
    decoded and encoded with ``local.offload``."""
    store = local.store

    def decoded(unpack: Callable, body: bytes) -> Deferred:
        return local.offload(unpack, body) if len(body) >= OFFLOAD_BYTES else maybeDeferred(unpack, body)

    async def write(body: bytes, push: bool = False) -> bytes:
        """Empty when every record was stored; else the newer versions that beat some."""
        writes = await decoded(unpack_writes, body)
        beaten = await (local.push(writes) if push else local.write(writes))
        if push or beaten is None:
            return b""
        return pack_versions([(key, version) for (key, _, _), version in zip(writes, beaten) if version])

    async def read(body: bytes) -> bytes:
        """Records in order, cut short after about ``BATCH_BYTES`` of values.  Reads of
        many keys (anti-entropy) run as a scan, and are encoded, off the reactor thread."""
        keys = unpack_keys(body)
        if len(keys) < THREADED_ITEMS:
            return pack_records(_first_batch(keys, [store.get(key) for key in keys]))
        records = await local.read(keys)
        return await local.offload(lambda: pack_records(_first_batch(keys, records)))

    async def versions(body: bytes) -> bytes:
        return await local.offload(pack_versions, await local.versions(*unpack_scan(body)))

    return {
        "write": lambda body: ensureDeferred(write(body)),
        "push": lambda body: ensureDeferred(write(body, push=True)),
        "read": lambda body: ensureDeferred(read(body)),
        "digests": lambda body: local.digests(*unpack_scan(body)).addCallback(pack_digests),
        "versions": lambda body: ensureDeferred(versions(body)),
    }


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


def _first_batch(keys: Sequence[str], records: Sequence[Optional[Record]]) -> list[Optional[tuple[str, Record]]]:
    """The first records, up to about ``BATCH_BYTES`` of values (at least one)."""
    found = (None if record is None else (key, record) for key, record in zip(keys, records))
    return next(batches(found, lambda item: 0 if item is None else len(item[1].value), None, BATCH_BYTES), [])
