"""Data follows the ring: after every membership change, and every anti-entropy
interval, each node makes sure that what it stores sits on exactly the right nodes.

A round, run by each node for itself:

- for every range it replicates, it runs an anti-entropy exchange with each co-replica
  in turn and pulls what it lacks, which also fills a new owner that is still empty.
  Pulling only, one peer after the other, a record reaches a node once: when every
  side pushed too, a new node got each record from several co-replicas at once;
- for every range it holds data in but no longer owns, it pushes that data to the
  range's owners and drops its copy once all of them acknowledged it;
- it purges the tombstones older than the grace period.

A round after a membership change compares every record.  Periodic rounds leave out
the writes of the last ``IN_FLIGHT_SECONDS``, which the next round compares: under a
steady load of new keys, the replicas always differ by the writes in flight.

Rounds never overlap.  ``settle`` runs rounds until one completes without failures on
an unchanged ring: ``POST /dht/join`` answers only then.  ``hand_off`` pushes all of this
node's data to the owners of a ring without it: ``/dht/leave`` does that first.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from twisted.internet.defer import DeferredLock, ensureDeferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import deferLater
from twisted.logger import Logger

from gossipdht.antientropy import exchange
from gossipdht.hlc import timestamp_at
from gossipdht.peer import PeerError
from gossipdht.replica import Replicas
from gossipdht.ring import Ring
from gossipdht.stats import DataStats
from gossipdht.storage import TokenRange

#: A membership change usually comes as a few events close together.
DEBOUNCE_SECONDS = 0.2
RETRY_SECONDS = 1.0
#: Keys handed off between two drops, which bounds the versions kept in memory.
HANDOFF_STEP = 50_000
#: Writes this recent may still be on their way to their replicas (a write to a replica
#: answers or fails within ``REQUEST_SECONDS``, 2 s): periodic rounds leave them out.
IN_FLIGHT_SECONDS = 5.0


def merged(ranges: Sequence[TokenRange]) -> list[TokenRange]:
    """Sorted ranges with touching neighbours joined."""
    out: list[TokenRange] = []
    for low, high in sorted(ranges):
        if out and out[-1][1] == low:
            out[-1] = (out[-1][0], high)
        else:
            out.append((low, high))
    return out


class Rebalancer:
    log = Logger()

    def __init__(self, name: str, ring: Callable[[], Ring], replicas: Replicas, n: int, reactor,
                 stats: DataStats, interval: float, tombstone_grace: float) -> None:
        self.name = name
        self._ring = ring
        self._replicas = replicas
        self._store = replicas.local.store
        self._n = n
        self._reactor = reactor
        self._stats = stats
        self._interval = interval
        self._grace = tombstone_grace
        self._lock = DeferredLock()
        self._call: Optional[IDelayedCall] = None
        #: Whether the ring changed since the last round that completed.
        self._ring_changed = True

    # -- scheduling ------------------------------------------------------------------------

    def start(self) -> None:
        self._schedule(self._interval)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def ring_changed(self) -> None:
        self._ring_changed = True
        self._schedule(DEBOUNCE_SECONDS)

    def _schedule(self, delay: float) -> None:
        """The next round runs in ``delay`` seconds, or sooner if it was due sooner."""
        if self._call is not None and self._call.active():
            if self._call.getTime() - self._reactor.seconds() <= delay:
                return
            self._call.cancel()
        self._call = self._reactor.callLater(delay, self._scheduled)

    def _scheduled(self) -> None:
        self._call = None
        ensureDeferred(self._scheduled_round())

    async def _scheduled_round(self) -> None:
        complete = await self.run_round()
        self._schedule(self._interval if complete else RETRY_SECONDS)

    async def run_round(self) -> bool:
        """Run one round after any running one; True when nothing failed."""
        return await self._lock.run(lambda: ensureDeferred(self._round()))

    async def settle(self, seconds: float) -> bool:
        """Run rounds until one completes on an unchanged ring; False at the deadline."""
        deadline = self._reactor.seconds() + seconds
        while True:
            ring = self._ring()
            if await self.run_round() and self._ring() is ring:
                return True
            if self._reactor.seconds() >= deadline:
                return False
            await deferLater(self._reactor, RETRY_SECONDS / 4, lambda: None)

    # -- a round -----------------------------------------------------------------------------

    async def _round(self) -> bool:
        self._stats.rebalance_rounds += 1
        self._purge_tombstones()
        full, self._ring_changed = self._ring_changed, False
        before = None if full else timestamp_at(self._reactor.seconds() - IN_FLIGHT_SECONDS)
        ring = self._ring()
        if self.name not in ring.members:
            # Leaving: ``hand_off`` gave everything to the others already, and once alone
            # the node keeps serving what it holds.  Nothing here is to be dropped.
            return True
        shared: dict[str, list[TokenRange]] = {}
        foreign: dict[frozenset[str], list[TokenRange]] = {}
        for low, high, owners in ring.placement(self._n):
            if self.name in owners:
                for owner in owners:
                    if owner != self.name:
                        shared.setdefault(owner, []).append((low, high))
            else:
                foreign.setdefault(frozenset(owners), []).append((low, high))
        complete = True
        for owners, ranges in foreign.items():
            complete &= await self._hand_off(ranges, sorted(owners), drop=lambda: self._ring() is ring)
        for peer, ranges in shared.items():
            # Pulls walk the ring backwards while handoffs walk it forwards: when a node
            # joins, the two meet once instead of moving the same records side by side.
            complete &= await self._exchange(peer, merged(ranges)[::-1], before)
        self._ring_changed |= full and not complete
        return complete

    async def _exchange(self, peer: str, ranges: list[TokenRange], before: Optional[int]) -> bool:
        try:
            repaired = await exchange(self._replicas.local, self._replicas[peer], ranges, push=False, pull=True,
                                      before=before)
        except PeerError as e:
            self._stats.anti_entropy_failures += 1
            self.log.debug("anti-entropy with {peer} failed: {error}", peer=peer, error=e)
            return False
        self._stats.anti_entropy_exchanges += 1
        self._stats.keys_repaired += repaired.pushed + repaired.pulled
        return True

    async def _hand_off(self, ranges: Sequence[TokenRange], owners: Sequence[str],
                        drop: Optional[Callable[[], bool]]) -> bool:
        """Push the data held in ``ranges`` to each owner; then, if ``drop()`` still says
        so, forget the versions every owner acknowledged."""
        local = self._replicas.local
        for step in await self._steps(merged(ranges)):
            held = await local.versions(step) if drop is not None else []
            for owner in owners:
                try:
                    repaired = await exchange(self._replicas.local, self._replicas[owner], step,
                                              push=True, pull=False)
                except PeerError as e:
                    self.log.debug("handing data to {owner} failed: {error}", owner=owner, error=e)
                    return False
                self._stats.keys_handed_off += repaired.pushed
            if drop is not None and drop():
                self._stats.keys_dropped += self._store.remove(held)
        return True

    async def _steps(self, ranges: list[TokenRange]) -> list[list[TokenRange]]:
        """The ranges that hold data here, grouped by about ``HANDOFF_STEP`` keys."""
        steps: list[list[TokenRange]] = [[]]
        size = 0
        for token_range, (count, _) in zip(ranges, await self._replicas.local.digests(ranges)):
            if not count:
                continue
            if size >= HANDOFF_STEP:
                steps.append([])
                size = 0
            steps[-1].append(token_range)
            size += count
        return steps if steps[0] else []

    async def hand_off(self, ring: Ring) -> bool:
        """Push everything stored here to its owners on ``ring``, keeping the copies."""
        by_owners: dict[frozenset[str], list[TokenRange]] = {}
        for low, high, owners in ring.placement(self._n):
            by_owners.setdefault(frozenset(owners), []).append((low, high))
        complete = True
        for owners, ranges in by_owners.items():
            complete &= await self._lock.run(lambda: ensureDeferred(self._hand_off(ranges, sorted(owners), None)))
        return complete

    def _purge_tombstones(self) -> None:
        cutoff = timestamp_at(self._reactor.seconds() - self._grace)
        if cutoff > 0:
            self._stats.tombstones_purged += self._store.purge_tombstones(cutoff)
