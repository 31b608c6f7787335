"""A replica of a key, this node's or another's, behind one interface.

The coordinator, anti-entropy and handoff talk to the replicas of a key without
caring where they are: ``LocalReplica`` is this node's store; another node's store is
reached through ``gossipdht.net.remotereplica``, which ``Replicas`` is given to make.

A write answers ``None`` when every record was stored (or was there already); when a
newer version already stored beat some, it answers, for each write, that version (or
None): the coordinator then writes again above it (see ``coordinator``).
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol, Sequence

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred, succeed

from gossipdht.core.hlc import HybridLogicalClock, Version
from gossipdht.data.committer import GroupCommitter
from gossipdht.data.stats import DataStats
from gossipdht.storage import Record, Store, TokenRange, Write

#: What ``write`` answers: None, or for each write the newer version that beat it.
Beaten = Optional[list[Optional[Version]]]
#: Records removed per transaction: the commits of requests wait for the one in progress.
REMOVE_STEP = 2000


def beaten_one(beaten: Optional[Version]) -> Beaten:
    """The answer to a single write, from the version that beat it (or None)."""
    return None if beaten is None else [beaten]


class Replica(Protocol):
    """What the data layer asks of a replica, local or remote."""

    name: str

    def expected_wait(self) -> float:
        """Seconds a read of it may take now: what the coordinator ranks replicas by."""
        ...

    def read_one(self, key: str) -> Deferred[Optional[Record]]: ...

    def read(self, keys: Sequence[str]) -> Deferred[list[Optional[Record]]]: ...

    def write(self, writes: Sequence[Write]) -> Deferred[Beaten]: ...

    def push(self, writes: Sequence[Write]) -> Deferred[Beaten]: ...

    def digests(self, ranges: Sequence[TokenRange],
                before: Optional[int] = None) -> Deferred[list[tuple[int, int]]]: ...

    def versions(self, ranges: Sequence[TokenRange],
                 before: Optional[int] = None) -> Deferred[list[tuple[str, Version]]]: ...


class LocalReplica:
    """This node's store, seen as one of the replicas.

    A read of it answers at once, from the store: it has no wait to expect.
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
            return self._committer.write(key, record).addCallback(beaten_one)
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

    def expected_wait(self) -> float:
        return 0.0

    def offload(self, f: Callable, *args) -> Deferred:
        """``f(*args)`` off the reactor thread when this node does storage work in threads:
        for the encoding and decoding of bulk messages, milliseconds per thousand records."""
        return self._in_thread(f, *args)

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


class Replicas:
    """The replica for each member name: this node's own store, or a client of another's."""

    def __init__(self, local: LocalReplica, addresses: Callable[[str], tuple[str, int]],
                 remote: Callable[[str, tuple[str, int]], Replica]) -> None:
        #: ``addresses(name)`` gives the member's API address, ``remote(name, address)``
        #: a client of that member's store.
        self.local = local
        self._addresses = addresses
        self._make_remote = remote
        self._remote: dict[tuple[str, tuple[str, int]], Replica] = {}

    def __getitem__(self, name: str) -> Replica:
        if name == self.local.name:
            return self.local
        address = self._addresses(name)
        replica = self._remote.get((name, address))
        if replica is None:
            replica = self._remote[(name, address)] = self._make_remote(name, address)
        return replica
