from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gossipdht.core.hlc import Version
from gossipdht.data.committer import THREADED_ITEMS, GroupCommitter
from gossipdht.storage import Record, StoreBusy
from gossipdht.storage.memory import MemoryStore


class RecordingStore(MemoryStore):
    def __init__(self, fail=False):
        super().__init__()
        self.batches = []
        self.fail = fail
        self.busy = False  # a transaction in progress in another thread

    def write(self, items, wait=True):
        items = list(items)
        if self.busy and not wait:
            raise StoreBusy("busy")
        self.batches.append(items)
        if self.fail:
            raise OSError("disk full")
        super().write(items)


def rec(ts):
    return Record(Version(ts, "n"), b"v", "t")


class GroupCommitterTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.store = RecordingStore()
        self.committer = GroupCommitter(self.store, self.clock)

    def test_writes_of_one_turn_share_one_batch_and_wait_for_it(self):
        first = self.committer.write("a", rec(1))
        second = self.committer.write("b", rec(2))
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.assertEqual(self.store.batches, [])
        self.clock.advance(0)
        self.assertEqual(self.store.batches, [[("a", rec(1)), ("b", rec(2))]])
        self.successResultOf(first)
        self.successResultOf(second)
        third = self.committer.write("c", rec(3))
        self.clock.advance(0)
        self.successResultOf(third)
        self.assertEqual(len(self.store.batches), 2)

    def test_many_records_commit_at_once_in_one_transaction(self):
        d = self.committer.write_many([(f"k{i}", rec(i + 1)) for i in range(500)])
        self.successResultOf(d)  # no reactor turn needed
        self.assertEqual([len(batch) for batch in self.store.batches], [500])
        self.committer.write("one", rec(1))
        self.committer.write_many([("a", rec(1)), ("b", rec(1))])
        self.clock.advance(0)
        self.assertEqual([len(batch) for batch in self.store.batches], [500, 2, 1])

    def test_a_failed_commit_fails_every_waiting_write(self):
        self.store.fail = True
        writes = [self.committer.write(k, rec(1)) for k in "ab"]
        self.clock.advance(0)
        for d in writes:
            self.failureResultOf(d, OSError)

    def test_drain_commits_at_once(self):
        d = self.committer.write("a", rec(1))
        self.successResultOf(ensureDeferred(self.committer.drain()))
        self.successResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.store.get("a"), rec(1))

    def threaded_committer(self):
        """A committer of a threaded store, and the Deferreds of what it gave the thread:
        each runs its work when fired."""
        self.store.threaded = True
        started = []

        def in_thread(f, *args):
            started.append(Deferred())
            return started[-1].addCallback(lambda _: f(*args))

        return GroupCommitter(self.store, self.clock, in_thread), started

    def test_a_threaded_store_commits_large_batches_through_the_runner_and_drain_waits(self):
        committer, started = self.threaded_committer()
        single = committer.write("a", rec(1))
        small = committer.write_many([("b", rec(1)), ("c", rec(1))])
        self.clock.advance(0)
        self.successResultOf(single)  # small commits stay on this thread
        self.successResultOf(small)
        large = committer.write_many([(f"k{i}", rec(1)) for i in range(THREADED_ITEMS)])
        drained = ensureDeferred(committer.drain())
        self.assertEqual(len(started), 1)
        self.assertNoResult(large)
        self.assertNoResult(drained)
        started[0].callback(None)  # the thread ran the commit
        self.successResultOf(large)
        self.successResultOf(drained)
        self.assertEqual([len(batch) for batch in self.store.batches], [2, 1, THREADED_ITEMS])

    def test_a_small_commit_follows_a_transaction_in_progress_in_a_thread_instead_of_waiting(self):
        committer, started = self.threaded_committer()
        self.store.busy = True
        single = committer.write("a", rec(1))
        small = committer.write_many([("b", rec(1))])
        self.clock.advance(0)
        self.assertEqual(len(started), 2)  # both handed to the thread, not waited for here
        self.assertNoResult(single)
        self.store.busy = False
        for thread in started:
            thread.callback(None)
        self.successResultOf(single)
        self.successResultOf(small)
        self.assertEqual(self.store.get("a"), rec(1))

