"""Group commit: the writes of one reactor turn reach the store in one transaction.

A request is acknowledged only when the transaction holding its write has committed,
so batching costs no durability; it only shares one commit among concurrent writes.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime

from gossipdht.batcher import Batcher
from gossipdht.storage import Record, Store


class GroupCommitter:
    def __init__(self, store: Store, clock: IReactorTime) -> None:
        self._store = store
        self._batcher: Batcher[tuple[str, Record], None] = Batcher(store.write, clock, max_batch=10_000)

    def write(self, key: str, record: Record) -> Deferred[None]:
        """Fires once the record is committed, or fails with the store's error."""
        return self._batcher.submit((key, record))

    def write_many(self, items: list[tuple[str, Record]]) -> Deferred[None]:
        """Commits the records now, in one transaction of their own: they are a batch
        already.  (Last writer wins: the order against pending writes does not matter.)"""
        return maybeDeferred(self._store.write, items)

    def flush(self) -> None:
        """Commit what is pending now (also called on shutdown)."""
        self._batcher.flush()
