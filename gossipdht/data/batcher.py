"""Batching: the items submitted during one reactor turn leave together.

Storage commits and requests to other nodes cost about the same for one item as for
hundreds, so callers submit items one at a time and a ``Batcher`` sends them in
batches.  At most ``max_in_flight`` batches are outstanding; items submitted meanwhile
wait for the next batch, so batches grow exactly when traffic is high.
"""

from __future__ import annotations

from typing import Callable, Generic, Optional, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from gossipdht.core.batches import batches

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """``send(items)`` returns (or fires with) one result per item, or None for all None."""

    def __init__(self, send: Callable[[list[Item]], object], clock: IReactorTime,
                 max_in_flight: int = 1, max_batch: int = 1000,
                 size: Optional[Callable[[Item], int]] = None, max_bytes: int = 0) -> None:
        """``size`` and ``max_bytes`` bound a batch's bytes too (a batch holds at least one item)."""
        self._send = send
        self._clock = clock
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._size = size
        self._max_bytes = max_bytes
        self._in_flight = 0
        #: Items submitted and not yet answered, waiting or in a batch in flight.
        self.outstanding = 0
        self._items: list[Item] = []
        self._waiting: list[Deferred[Result]] = []
        self._call: Optional[IDelayedCall] = None

    def submit(self, item: Item) -> Deferred[Result]:
        """Fires with the item's result once its batch is done, or fails with the batch."""
        self._items.append(item)
        self.outstanding += 1
        done: Deferred[Result] = Deferred()
        self._waiting.append(done)
        if self._call is None and self._in_flight < self._max_in_flight:
            self._call = self._clock.callLater(0, self.flush)
        return done

    def flush(self) -> None:
        """Send what is pending now (also called on shutdown)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        while self._items and self._in_flight < self._max_in_flight:
            count = self._batch_length()
            items, waiting = self._items[:count], self._waiting[:count]
            del self._items[:count], self._waiting[:count]
            self._in_flight += 1
            maybeDeferred(self._send, items).addBoth(self._finished, waiting)

    def _batch_length(self) -> int:
        if self._size is None:
            return self._max_batch
        return len(next(batches(self._items, self._size, self._max_batch, self._max_bytes)))

    def _finished(self, results, waiting: list[Deferred[Result]]) -> None:
        self._in_flight -= 1
        self.outstanding -= len(waiting)
        if isinstance(results, Failure):
            for done in waiting:
                done.errback(results)
        else:
            for i, done in enumerate(waiting):
                done.callback(None if results is None else results[i])
        if self._items and self._call is None and self._in_flight < self._max_in_flight:
            self._call = self._clock.callLater(0, self.flush)
