"""Data follows the ring: after every membership change, and every anti-entropy
interval, each node makes sure that what it stores sits on exactly the right nodes.

A round, run by each node for itself:

- for every range it replicates, it runs an anti-entropy exchange with each co-replica
  in turn and pulls what it lacks, which also fills a new owner that is still empty.
  Pulling only, one peer after the other, a record reaches a node once: when every
  side pushed too, a new node got each record from several co-replicas at once;
- for every range it holds data in but no longer owns, it pushes that data to the
  range's owners and drops its copy once all of them acknowledged it, and once every live
  member has this ring: a member on the ring before still reads the key here;
- it purges the tombstones older than the grace period.

A round after a membership change compares every record.  Periodic rounds leave out
the writes of the last ``IN_FLIGHT_SECONDS``, which the next round compares: under a
steady load of new keys, the replicas always differ by the writes in flight.

Members that are down (dead, but still on the ring within the rebalance delay) are
skipped: nothing is pulled from them, and data they should receive stays here, pushed
to the other owners and not dropped, until they are back or off the ring.

Rounds never overlap.  A round that completes on an unchanged ring *settles* it: the
node has done what that ring asks of it, which ``transfers()`` reports (``GET
/dht/transfers``) with what the round in progress still has to move; ``POST /dht/join``
answers once every member settled.  ``hand_off`` pushes all of this node's data to the
owners of a ring without it: ``/dht/leave`` does that first.
"""

from __future__ import annotations

from collections import deque
from typing import Awaitable, Callable, Optional, Sequence

from twisted.internet.defer import DeferredLock, ensureDeferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from gossipdht.core.batches import groups
from gossipdht.core.errors import PeerError
from gossipdht.core.hlc import timestamp_at
from gossipdht.core.ring import Ring
from gossipdht.data.antientropy import exchange
from gossipdht.data.replica import Replicas
from gossipdht.data.stats import DataStats
from gossipdht.storage import TokenRange

#: A membership change usually comes as a few events close together.
DEBOUNCE_SECONDS = 0.2
RETRY_SECONDS = 1.0
#: Keys handed off between two drops, which bounds the versions kept in memory.  Each
#: is a Python object the cyclic garbage collector walks in every full collection: at
#: 50,000 (two steps in flight, 100,000-200,000 objects) a collection held the reactor
#: thread 35-75 ms, about once a second, on every node handing data to a joiner.
HANDOFF_STEP = 5_000
#: Writes this recent may still be on their way to their replicas (a write to a replica
#: answers or fails within ``REQUEST_SECONDS``, 2 s): periodic rounds leave them out.
IN_FLIGHT_SECONDS = 5.0
#: Rounds shown by ``transfers()``, the newest first.
LAST_ROUNDS = 5
#: What a round shows of the counters it moved, by the name it shows it under.
ROUND_COUNTERS = {"exchanges": "anti_entropy_exchanges", "failures": "anti_entropy_failures",
                  "keys_repaired": "keys_repaired", "keys_handed_off": "keys_handed_off"}


async def _agreed(checksum: str) -> bool:
    return True


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
    """Moves data after ring changes (handoffs and pulls), runs anti-entropy rounds and purges old tombstones."""

    log = Logger()

    def __init__(self, name: str, ring: Callable[[], Ring], down: Callable[[], frozenset[str]],
                 replicas: Replicas, n: int, reactor, stats: DataStats, interval: float,
                 tombstone_grace: float, agreed: Callable[[str], Awaitable[bool]] = _agreed) -> None:
        self.name = name
        self._ring = ring
        self._down = down
        #: Whether every live member has the ring of this checksum (asked before a drop).
        self._agreed = agreed
        self._agreed_on: Optional[Ring] = None
        self._replicas = replicas
        self._n = n
        self._reactor = reactor
        self._stats = stats
        self._interval = interval
        self._grace = tombstone_grace
        self._lock = DeferredLock()
        self._call: Optional[IDelayedCall] = None
        #: Whether the ring changed since the last round that completed.
        self._ring_changed = True
        #: The checksum of the last ring a round completed on, unchanged while it ran.
        self.settled: Optional[str] = None
        #: Rounds that settled a ring: a read in progress looks again once this changes.
        self.settled_rounds = 0
        # What the round in progress still has to do: keys to push to each owner, ranges
        # to pull from each co-replica, keys kept for owners that are down.
        self._sending: dict[str, int] = {}
        self._receiving: dict[str, int] = {}
        self._waiting: dict[str, int] = {}
        #: The last rounds, the newest first: when each ended (reactor time) and what it did.
        self._rounds: deque[tuple[float, dict]] = deque(maxlen=LAST_ROUNDS)

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

    def pushed(self, keys: list[str]) -> None:
        """A handoff arrived: keys this node does not own on its ring (the sender's ring
        was another) leave it unsettled until a round has moved them on."""
        ring = self._ring()
        if any(self.name not in ring.preference_list(key, self._n) for key in keys):
            self.settled = None
            self.ring_changed()

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
        return await self._lock.run(lambda: ensureDeferred(self._recorded_round()))

    async def _recorded_round(self) -> bool:
        """A round, remembered among the last ones with what it did."""
        started, full = self._reactor.seconds(), self._ring_changed
        before = {name: getattr(self._stats, counter) for name, counter in ROUND_COUNTERS.items()}
        complete = await self._round()
        ended = self._reactor.seconds()
        self._rounds.appendleft((ended, {
            "seconds": round(ended - started, 3), "full": full, "complete": complete,
            **{name: getattr(self._stats, counter) - before[name] for name, counter in ROUND_COUNTERS.items()}}))
        return complete

    def transfers(self) -> dict:
        """The ring this node settled and what it still moves, for ``GET /dht/transfers``."""
        def listed(book: dict[str, int], role: str, unit: str) -> list[dict]:
            return [{role: name, unit: count} for name, count in sorted(book.items()) if count > 0]
        now = self._reactor.seconds()
        return {"node": self.name, "ring": self._ring().checksum, "settled": self.settled,
                "sending": listed(self._sending, "to", "keys"),
                "receiving": listed(self._receiving, "from", "ranges"),
                "waiting": listed(self._waiting, "to", "keys"),
                "rounds": [{"ended_seconds_ago": round(now - ended, 1), **done} for ended, done in self._rounds]}

    # -- a round -----------------------------------------------------------------------------

    async def _round(self) -> bool:
        self._stats.rebalance_rounds += 1
        await self._purge_tombstones()
        full, self._ring_changed = self._ring_changed, False
        before = None if full else timestamp_at(self._reactor.seconds() - IN_FLIGHT_SECONDS)
        ring = self._ring()
        self._sending, self._receiving, self._waiting = {}, {}, {}
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
        down = self._down()
        # Nothing is pulled from a member that is down: what it holds, the other owners
        # hold too, and it pulls what it missed when it is back.
        pulls = {peer: merged(ranges) for peer, ranges in shared.items() if peer not in down}
        self._receiving = {peer: len(ranges) for peer, ranges in pulls.items()}
        complete = True
        for owners, ranges in foreign.items():
            complete &= await self._hand_off(ranges, sorted(owners), ring)
        for peer, ranges in pulls.items():
            # Pulls walk the ring backwards while handoffs walk it forwards: when a node
            # joins, the two meet once instead of moving the same records side by side.
            if await self._exchange(peer, ranges[::-1], before):
                del self._receiving[peer]
            else:
                complete = False
        # Settled, unless something arrived meanwhile that asks for another round.
        if complete and self._ring() is ring and not self._ring_changed:
            self.settled = ring.checksum
            self.settled_rounds += 1
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
                        ring: Optional[Ring]) -> bool:
        """Push the data held in ``ranges`` to each owner that is not down; then, if every
        owner took it and ``ring`` is still the ring, forget the versions they acknowledged."""
        local = self._replicas.local
        down = self._down()
        steps = await self._steps(merged(ranges))
        for owner in owners:
            book = self._waiting if owner in down else self._sending
            book[owner] = book.get(owner, 0) + sum(size for _, size in steps)
        for step, size in steps:
            held = await local.versions(step) if ring is not None else []
            for owner in owners:
                if owner in down:
                    continue
                try:
                    repaired = await exchange(self._replicas.local, self._replicas[owner], step,
                                              push=True, pull=False)
                except PeerError as e:
                    self.log.debug("handing data to {owner} failed: {error}", owner=owner, error=e)
                    return False
                self._stats.keys_handed_off += repaired.pushed
                self._sending[owner] -= size
            if ring is None or down & set(owners) or self._ring() is not ring:
                continue
            if self._agreed_on is not ring:
                if not await self._agreed(ring.checksum):
                    return False  # the copies stay until a later round
                self._agreed_on = ring
            if self._ring() is ring:
                self._stats.keys_dropped += await local.remove(held)
        return True

    async def _steps(self, ranges: list[TokenRange]) -> list[tuple[list[TokenRange], int]]:
        """The ranges that hold data here, grouped by about ``HANDOFF_STEP`` keys, with
        the number of keys in each group."""
        counts = zip(ranges, await self._replicas.local.digests(ranges))
        return list(groups(((token_range, count) for token_range, (count, _) in counts if count), HANDOFF_STEP))

    async def hand_off(self, ring: Ring) -> bool:
        """Push everything stored here to its owners on ``ring``, keeping the copies."""
        by_owners: dict[frozenset[str], list[TokenRange]] = {}
        for low, high, owners in ring.placement(self._n):
            by_owners.setdefault(frozenset(owners), []).append((low, high))
        complete = True
        for owners, ranges in by_owners.items():
            complete &= await self._lock.run(lambda *args: ensureDeferred(self._hand_off(*args)), ranges, sorted(owners), None)
        return complete

    async def _purge_tombstones(self) -> None:
        cutoff = timestamp_at(self._reactor.seconds() - self._grace)
        if cutoff > 0:
            self._stats.tombstones_purged += await self._replicas.local.purge_tombstones(cutoff)
