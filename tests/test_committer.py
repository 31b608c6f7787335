from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gossipdht.committer import GroupCommitter
from gossipdht.coordinator import Coordinator
from gossipdht.hlc import HybridLogicalClock, Version
from gossipdht.storage import Record
from gossipdht.storage.memory import MemoryStore


class RecordingStore(MemoryStore):
    def __init__(self, fail=False):
        super().__init__()
        self.batches = []
        self.fail = fail

    def write(self, items):
        items = list(items)
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

    def test_a_failed_commit_fails_every_waiting_write(self):
        self.store.fail = True
        writes = [self.committer.write(k, rec(1)) for k in "ab"]
        self.clock.advance(0)
        for d in writes:
            self.failureResultOf(d, OSError)

    def test_flush_commits_at_once(self):
        d = self.committer.write("a", rec(1))
        self.committer.flush()
        self.successResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.store.get("a"), rec(1))


class CoordinatorTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.store = MemoryStore()

    def coordinator(self):
        committer = GroupCommitter(self.store, self.clock)
        return Coordinator("me", self.store, committer, HybridLogicalClock(self.clock.seconds))

    def test_put_answers_only_after_the_commit(self):
        c = self.coordinator()
        d = c.put("k", b"v", "text/plain")
        self.assertNoResult(d)
        self.clock.advance(0)
        record = self.successResultOf(d)
        self.assertEqual(self.successResultOf(c.get("k")), record)
        self.assertEqual(record.version.node, "me")

    def test_delete_hides_the_key_and_keeps_a_tombstone(self):
        c = self.coordinator()
        c.put("k", b"v", "text/plain")
        c.delete("k")
        self.clock.advance(0)
        self.assertIsNone(self.successResultOf(c.get("k")))
        self.assertTrue(self.store.get("k").deleted)
        self.assertEqual(c.keys(None, 10), [])

    def test_a_restarted_node_writes_newer_versions_even_if_its_clock_went_back(self):
        c = self.coordinator()
        c.put("k", b"old", "text/plain")
        self.clock.advance(0)
        self.clock.rightNow -= 3600
        restarted = self.coordinator()
        restarted.put("k", b"new", "text/plain")
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(restarted.get("k")).value, b"new")
