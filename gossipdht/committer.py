"""Group commit: the writes of one reactor turn reach the store in one transaction.

A request is acknowledged only when the transaction holding its write has committed,
so batching costs no durability; it only shares one commit among concurrent writes.
"""

from __future__ import annotations

from typing import Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from gossipdht.storage import Record, Store


class GroupCommitter:
    def __init__(self, store: Store, clock: IReactorTime) -> None:
        self._store = store
        self._clock = clock
        self._batch: list[tuple[str, Record]] = []
        self._waiting: list[Deferred[None]] = []
        self._call: Optional[IDelayedCall] = None

    def write(self, key: str, record: Record) -> Deferred[None]:
        """Fires once the record is committed, or fails with the store's error."""
        self._batch.append((key, record))
        done: Deferred[None] = Deferred()
        self._waiting.append(done)
        if self._call is None:
            self._call = self._clock.callLater(0, self.flush)
        return done

    def flush(self) -> None:
        """Commit what is pending now (also called on shutdown)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        batch, waiting = self._batch, self._waiting
        self._batch, self._waiting = [], []
        if not batch:
            return
        try:
            self._store.write(batch)
        except Exception:
            failure = Failure()
            for done in waiting:
                done.errback(failure)
        else:
            for done in waiting:
                done.callback(None)
