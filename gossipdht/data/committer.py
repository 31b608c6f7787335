"""Group commit: the writes of one reactor turn reach the store in one transaction.

A request is acknowledged only when the transaction holding its write has committed,
so batching costs no durability; it only shares one commit among concurrent writes.

Those small commits run on the reactor thread: handing each to a thread cost 30 % of
the single-key write rate (measured with 16 clients on 3 nodes).  They do with ``--sync full``
too, where each commit waits for an fsync (0.7 ms on the disk of this 2-core machine):
handed to a thread, PUT through 3 such nodes gave 0.82 times the rate (medians of 8
interleaved rounds of 5 s; slower in 7 of them).  Batches of at least
``THREADED_ITEMS`` records (bulk writes, anti-entropy) go through ``in_thread``
(``deferToThread`` in a node) when the store allows it: their tens of milliseconds do
not stall requests.  Nor does a small commit wait on the reactor thread for one of those
to end: when a transaction is in progress in a thread, it follows it in a thread too.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from gossipdht.core.hlc import Version
from gossipdht.data.batcher import Batcher
from gossipdht.storage import Record, Store, StoreBusy

THREADED_ITEMS = 256


class GroupCommitter:
    """Writes of one reactor turn gathered into one store transaction, in a thread when the store allows."""

    def __init__(self, store: Store, clock: IReactorTime,
                 in_thread: Optional[Callable[..., Deferred]] = None) -> None:
        self._store = store
        self._in_thread = in_thread if in_thread is not None and store.threaded else maybeDeferred
        self._in_flight: set[Deferred] = set()
        self._batcher: Batcher[tuple[str, Record], Optional[Version]] = Batcher(
            lambda items: self._commit(self._here_unless_busy, items), clock, max_batch=10_000)

    def _here_unless_busy(self, write: Callable[..., dict], items: list[tuple[str, Record]]) -> Deferred[dict]:
        """``write(items)`` on this thread, or in a thread after the transaction in progress."""
        def busy(failure: Failure) -> Deferred[dict]:
            failure.trap(StoreBusy)
            return self._in_thread(write, items)
        return maybeDeferred(write, items, wait=False).addErrback(busy)

    def _commit(self, run: Callable[..., Deferred],
                items: list[tuple[str, Record]]) -> Deferred[Optional[list[Optional[Version]]]]:
        done = run(self._store.write, items).addCallback(_beaten, items)
        self._in_flight.add(done)

        def finished(result):
            self._in_flight.discard(done)
            return result

        return done.addBoth(finished)

    def write(self, key: str, record: Record) -> Deferred[Optional[Version]]:
        """Fires once the record is committed (with the newer version that beat it, if
        one did), or fails with the store's error."""
        return self._batcher.submit((key, record))

    def write_many(self, items: list[tuple[str, Record]]) -> Deferred[Optional[list[Optional[Version]]]]:
        """Commits the records at once, in one transaction of their own: they are a batch
        already.  (Last writer wins: the order against pending writes does not matter.)
        Fires with None, or with the newer version that beat each record (or None)."""
        return self._commit(self._in_thread if len(items) >= THREADED_ITEMS else self._here_unless_busy, items)

    async def drain(self) -> None:
        """Commit everything submitted so far, and wait for it (on shutdown)."""
        while True:
            self._batcher.flush()
            if not self._in_flight:
                return
            await DeferredList(list(self._in_flight), consumeErrors=True)


def _beaten(newer: dict[str, Version], items: list[tuple[str, Record]]) -> Optional[list[Optional[Version]]]:
    """For each record, the stored version that beat it; None when none was beaten."""
    if not newer:
        return None
    return [newer[key] if key in newer and newer[key] > record.version else None for key, record in items]
