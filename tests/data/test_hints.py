"""Hinted handoff: what a node kept for a replica that was down reaches it, or the
key's owners when it left the ring, and stays until it did."""

from twisted.internet.defer import fail
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gossipdht.core.errors import PeerError
from gossipdht.core.hlc import HybridLogicalClock, Version
from gossipdht.core.ring import Ring
from gossipdht.data.committer import GroupCommitter
from gossipdht.data.hints import HINTS_PER_BATCH, HintedHandoff
from gossipdht.data.replica import LocalReplica
from gossipdht.data.stats import DataStats
from gossipdht.storage import Record
from gossipdht.storage.memory import MemoryStore

NAMES = ["a", "b", "c", "d"]


class Replicas(dict):
    local = property(lambda self: self["a"])


def record(i: int) -> Record:
    return Record(Version(i + 1, "a"), b"v%d" % i, "t")


class HintedHandoffTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.stats = DataStats()
        self.replicas = Replicas()
        for name in NAMES:
            store = MemoryStore()
            self.replicas[name] = LocalReplica(name, store, GroupCommitter(store, self.clock),
                                               HybridLogicalClock(self.clock.seconds), self.stats)
        self.ring, self.down = Ring(NAMES), frozenset()
        self.hints = HintedHandoff(lambda: self.ring, lambda: self.down, self.replicas, 3, self.stats, self.clock)
        self.kept = self.replicas["a"].store

    def deliver(self):
        d = self.hints.deliver()
        self.clock.advance(0)  # the group commits
        self.successResultOf(d)

    def test_hints_for_a_member_back_up_are_delivered_to_it_and_forgotten(self):
        items = [(f"k{i}", record(i)) for i in range(HINTS_PER_BATCH + 5)]  # more than one batch
        self.kept.add_hints("b", items)
        self.deliver()
        self.assertEqual([self.replicas["b"].store.get(key) for key, _ in items], [r for _, r in items])
        self.assertEqual((self.hints.pending(), self.stats.hints_delivered), (0, len(items)))

    def test_hints_for_a_member_that_is_down_wait(self):
        self.kept.add_hints("b", [("k", record(1))])
        self.down = frozenset({"b"})
        self.deliver()
        self.assertIsNone(self.replicas["b"].store.get("k"))
        self.assertEqual(self.hints.pending(), 1)

    def test_hints_a_member_did_not_take_stay_for_the_next_delivery(self):
        self.kept.add_hints("b", [("k", record(1))])
        self.replicas["b"].write = lambda writes: fail(PeerError("b timed out"))
        self.deliver()
        self.assertEqual(self.hints.pending(), 1)
        del self.replicas["b"].write  # reachable again
        self.deliver()
        self.assertEqual(self.replicas["b"].store.get("k"), record(1))
        self.assertEqual(self.hints.pending(), 0)

    def test_hints_for_a_member_off_the_ring_go_to_the_keys_owners(self):
        self.kept.add_hints("gone", [("k", record(1))])
        self.deliver()
        for owner in self.ring.preference_list("k", 3):
            self.assertEqual(self.replicas[owner].store.get("k"), record(1))
        self.assertEqual(self.hints.pending(), 0)

    def test_a_newer_hint_for_the_key_kept_meanwhile_is_not_forgotten_with_the_older(self):
        self.kept.add_hints("b", [("k", record(1))])
        slow = self.replicas["b"].write

        def write_and_meanwhile_a_newer_hint(writes):
            self.kept.add_hints("b", [("k", record(2))])
            return slow(writes)
        self.replicas["b"].write = write_and_meanwhile_a_newer_hint
        self.deliver()
        self.assertEqual(self.kept.hints("b", 10), [("k", record(2))])
