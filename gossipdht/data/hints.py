"""Hinted handoff: deliver the writes this node kept for a replica that was down.

Hints are stored durably (they survive a restart) and delivered every second to their
target once it is up again (a target that is down keeps its place on the ring for the
rebalance delay).  A target that left the ring will not come back
for its hints: they are written to the key's current owners instead, so an
acknowledged write is never stranded in a hint.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import DeferredLock, ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from gossipdht.core.errors import PeerError
from gossipdht.core.ring import Ring
from gossipdht.data.replica import Replicas
from gossipdht.data.stats import DataStats

DELIVERY_SECONDS = 1.0
HINTS_PER_BATCH = 1000


class HintedHandoff:
    """Delivers the writes kept here for owners that were down, once they are back."""

    log = Logger()

    def __init__(self, ring: Callable[[], Ring], down: Callable[[], frozenset[str]], replicas: Replicas, n: int,
                 stats: DataStats, reactor) -> None:
        self._ring = ring
        self._down = down
        self._replicas = replicas
        self._local = replicas.local
        self._n = n
        self._stats = stats
        self._lock = DeferredLock()
        self._loop = LoopingCall(self.deliver)
        self._loop.clock = reactor

    def start(self) -> None:
        self._loop.start(DELIVERY_SECONDS, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def pending(self) -> int:
        return sum(self._local.store.hint_counts().values())

    def deliver(self):
        """Deliver what can be delivered now; never two deliveries at once."""
        if self._lock.locked:
            return None
        return self._lock.run(lambda: ensureDeferred(self._deliver_all()))

    async def _deliver_all(self) -> None:
        for target in await self._local.hint_counts():
            if target in self._down():
                continue
            try:
                while await self._deliver_batch(target):
                    pass
            except PeerError as e:
                self.log.debug("hints for {target} not delivered yet: {error}", target=target, error=e)

    async def _deliver_batch(self, target: str) -> bool:
        """Deliver one batch; True if there may be more."""
        hints = await self._local.hints(target, HINTS_PER_BATCH)
        if not hints:
            return False
        ring = self._ring()
        if target in ring.members:
            await self._replicas[target].write([(key, record, None) for key, record in hints])
        else:
            owners: dict[str, list] = {}
            for key, record in hints:
                for owner in ring.preference_list(key, self._n):
                    owners.setdefault(owner, []).append((key, record, None))
            for owner, writes in owners.items():
                await self._replicas[owner].write(writes)
        await self._local.remove_hints(target, [(key, record.version) for key, record in hints])
        self._stats.hints_delivered += len(hints)
        return len(hints) == HINTS_PER_BATCH
