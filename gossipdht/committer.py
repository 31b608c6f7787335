"""Group commit: the writes of one reactor turn reach the store in one transaction.

A request is acknowledged only when the transaction holding its write has committed,
so batching costs no durability; it only shares one commit among concurrent writes.
With ``in_thread`` (``deferToThread`` in a node) a store that allows it commits in
another thread, and the reactor serves requests meanwhile.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IReactorTime

from gossipdht.batcher import Batcher
from gossipdht.storage import Record, Store


class GroupCommitter:
    def __init__(self, store: Store, clock: IReactorTime,
                 in_thread: Optional[Callable[..., Deferred]] = None) -> None:
        self._store = store
        self._run = in_thread if in_thread is not None and store.threaded else maybeDeferred
        self._in_flight: set[Deferred] = set()
        self._batcher: Batcher[tuple[str, Record], None] = Batcher(self._commit, clock, max_batch=10_000)

    def _commit(self, items: list[tuple[str, Record]]) -> Deferred[None]:
        done = self._run(self._store.write, items)
        self._in_flight.add(done)

        def finished(result):
            self._in_flight.discard(done)
            return result

        return done.addBoth(finished)

    def write(self, key: str, record: Record) -> Deferred[None]:
        """Fires once the record is committed, or fails with the store's error."""
        return self._batcher.submit((key, record))

    def write_many(self, items: list[tuple[str, Record]]) -> Deferred[None]:
        """Commits the records at once, in one transaction of their own: they are a batch
        already.  (Last writer wins: the order against pending writes does not matter.)"""
        return self._commit(items)

    async def drain(self) -> None:
        """Commit everything submitted so far, and wait for it (on shutdown)."""
        while True:
            self._batcher.flush()
            if not self._in_flight:
                return
            await DeferredList(list(self._in_flight), consumeErrors=True)
