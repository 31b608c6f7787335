"""Another node's replica over the internal RPC, and this node's served to the others.

Single-key reads and writes to a remote node are batched: the ones of a reactor turn
share one request.  Bulk ones travel in batches of ``gossipdht.core.batches``.
"""

from __future__ import annotations

from typing import Awaitable, Optional, Sequence

from twisted.internet.defer import Deferred, ensureDeferred, succeed

from gossipdht.core.batches import BATCH_BYTES, BATCH_ITEMS, batches
from gossipdht.core.errors import PeerError
from gossipdht.core.hlc import Version
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

#: Batches to one peer in flight at once; more writes wait and join the next batch.
IN_FLIGHT_PER_PEER = 4
REQUEST_SECONDS = 2.0
BULK_SECONDS = 30.0


def _value_bytes(write: Write) -> int:
    return len(write[1].value)


class RemoteReplica:
    """Another node's store, through its internal API."""

    def __init__(self, name: str, address: tuple[str, int], rpc: RpcClient, clock) -> None:
        self.name = name
        self.address = address
        self._rpc = rpc
        self._writes: Batcher[Write, Optional[Version]] = Batcher(self._send_writes, clock, IN_FLIGHT_PER_PEER, BATCH_ITEMS,
                                                      _value_bytes, BATCH_BYTES)
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
            return self._writes.submit(writes[0]).addCallback(beaten_one)
        return ensureDeferred(self._write_bulk(writes))

    async def _write_bulk(self, writes: Sequence[Write], method: str = "write") -> Beaten:
        beaten: list[Optional[Version]] = []
        for chunk in batches(writes, _value_bytes, BATCH_ITEMS, BATCH_BYTES):
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
        return found.addCallback(lambda records: pack_records(_first_batch(keys, records)))

    return {
        "write": write,
        "push": lambda body: local.push(unpack_writes(body)).addCallback(lambda _: b""),
        "read": read,
        "digests": lambda body: local.digests(*unpack_scan(body)).addCallback(pack_digests),
        "versions": lambda body: local.versions(*unpack_scan(body)).addCallback(pack_versions),
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
    found = [None if record is None else (key, record) for key, record in zip(keys, records)]
    return next(batches(found, lambda item: 0 if item is None else len(item[1].value), None, BATCH_BYTES), [])
