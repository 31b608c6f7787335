"""Quorum reads and writes, sloppy quorum, read repair: replicas in memory, one fake clock."""

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gossipdht.core.errors import PeerError
from gossipdht.core.hlc import HybridLogicalClock, Version
from gossipdht.core.ring import Ring
from gossipdht.data.committer import GroupCommitter
from gossipdht.data.coordinator import MAX_REISSUES, Coordinator, QuorumError
from gossipdht.data.replica import LocalReplica
from gossipdht.data.stats import DataStats
from gossipdht.storage import Record, ring_order
from gossipdht.storage.memory import MemoryStore

NAMES = ["a", "b", "c", "d", "e"]


class FakeReplica(LocalReplica):
    """A node's store that can be down (fails at once) or hung (never answers)."""

    state = "up"
    reads = 0
    wait = 0.0

    def expected_wait(self):
        return self.wait

    def _maybe(self, call):
        if self.state == "down":
            return fail(PeerError(f"{self.name} is down"))
        if self.state == "hung":
            return Deferred()
        return call()

    def write(self, writes):
        return self._maybe(lambda: super(FakeReplica, self).write(writes))

    def read_one(self, key):
        self.reads += 1
        return self._maybe(lambda: super(FakeReplica, self).read_one(key))


class FakeReplicas(dict):
    local = property(lambda self: self["a"])


class CoordinatorTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.stats = DataStats()
        self.replicas = FakeReplicas()
        for name in NAMES:
            store = MemoryStore()
            self.replicas[name] = FakeReplica(name, store, GroupCommitter(store, self.clock),
                                              HybridLogicalClock(self.clock.seconds), self.stats)
        self.ring = Ring(NAMES)
        self.coordinator = self.make()

    def make(self, n=3, r=2, w=2):
        self.down, self.unsettled, self.clock_trouble, self.moves = frozenset(), [], None, 0
        return Coordinator("a", lambda: self.ring, self.replicas, HybridLogicalClock(self.clock.seconds),
                           n, r, w, self.stats, lambda: self.down, lambda: self.unsettled,
                           lambda: self.clock_trouble, lambda: self.moves)

    def test_a_write_beaten_by_a_version_from_a_clock_ahead_goes_again_above_it(self):
        owners = self.owners("k", 3)
        ahead = Record(Version(self.coordinator._next_version().timestamp + (30_000 << 16), "fast"), b"first", "t")
        for name in owners[:2]:  # an earlier write, versioned by a clock 30 s ahead, on W owners
            self.replicas[name].store.write([("k", ahead)])
        d = self.coordinator.put("k", b"second", "t")
        self.clock.advance(0)
        record = self.successResultOf(d)
        self.assertGreater(record.version, ahead.version)
        self.assertEqual(self.stats.writes_reissued, 1)
        self.clock.advance(0)
        for name in owners:
            self.assertEqual(self.stored(name, "k"), record)
        self.assertEqual(self.successResultOf(self.coordinator.get("k")).value, b"second")

    def test_a_late_answer_that_a_later_write_beat_an_acknowledged_one_writes_nothing_again(self):
        first, second, slow = self.owners("k", 3)
        answers = []
        self.replicas[slow].write = lambda writes: answers.append(Deferred()) or answers[-1]
        d = self.coordinator.put("k", b"first", "t")
        self.clock.advance(0)
        self.successResultOf(d)  # W=2: the first two owners took it
        self.clock.advance(1)
        d = self.coordinator.put("k", b"second", "t")
        self.clock.advance(0)
        second_record = self.successResultOf(d)
        answers[0].callback([second_record.version])  # the slow owner answers the first write at last
        self.clock.advance(0)
        self.assertEqual(self.stats.writes_reissued, 0)
        for name in (first, second):
            self.assertEqual(self.stored(name, "k"), second_record)

    def test_a_write_no_replica_beat_is_written_once(self):
        d = self.coordinator.put("k", b"v", "t")
        self.clock.advance(0)
        self.successResultOf(d)
        self.assertEqual(self.stats.writes_reissued, 0)

    def test_a_write_overtaken_again_and_again_fails_saying_so(self):
        owners = self.owners("k", 3)
        for name in owners:
            replica = self.replicas[name]
            replica.write = lambda writes: succeed([Version(1 << 62, "z")] * len(writes))
        failure = self.failureResultOf(self.coordinator.put("k", b"v", "t"), QuorumError)
        self.assertEqual(str(failure.value), "newer writes of the key kept overtaking this one")
        self.assertEqual(self.stats.writes_reissued, MAX_REISSUES)

    def test_a_node_whose_clock_is_off_coordinates_no_writes_but_reads(self):
        d = self.coordinator.put("k", b"v", "t")
        self.clock.advance(0)
        record = self.successResultOf(d)
        self.clock_trouble = "this node's clock is off"
        failure = self.failureResultOf(self.coordinator.put("k", b"newer", "t"), QuorumError)
        self.assertEqual((failure.value.code, str(failure.value)), (503, "this node's clock is off"))
        self.failureResultOf(self.coordinator.delete("k"), QuorumError)
        self.assertEqual(self.successResultOf(self.coordinator.put_many({"k": b"x"}, "t")),
                         {"k": "this node's clock is off"})
        self.assertEqual(self.stats.writes_refused_for_clock, 3)
        self.assertEqual(self.successResultOf(self.coordinator.get("k")), record)

    def owners(self, key, n=5):
        return self.ring.preference_list(key, n)

    def stored(self, name, key):
        return self.replicas[name].store.get(key)

    def test_a_write_reaches_the_n_owners_and_answers_after_w(self):
        first, second, third, *others = self.owners("k")
        self.replicas[third].state = "hung"
        d = self.coordinator.put("k", b"v", "text/plain")
        self.assertNoResult(d)  # not before the commits
        self.clock.advance(0)
        record = self.successResultOf(d)
        for name in (first, second):
            self.assertEqual(self.stored(name, "k"), record)
        for name in others:
            self.assertIsNone(self.stored(name, "k"))

    def test_no_answer_while_fewer_than_w_replicas_acknowledged(self):
        first, second, third, *_ = self.owners("k")
        self.replicas[second].state = self.replicas[third].state = "hung"
        d = self.coordinator.put("k", b"v", "text/plain")
        self.clock.advance(0)
        self.assertNoResult(d)

    def test_a_failed_owner_is_replaced_by_the_next_node_with_a_hint(self):
        first, second, third, fourth, fifth = self.owners("k")
        self.replicas[second].state = "down"
        d = self.coordinator.put("k", b"v", "text/plain", w=3)
        self.clock.advance(0)
        record = self.successResultOf(d)
        self.assertIsNone(self.stored(fourth, "k"))  # kept as a hint, not served
        self.assertEqual(self.replicas[fourth].store.hints(second, 10), [("k", record)])
        self.assertEqual(self.stats.hints_stored, 1)

    def test_an_owner_that_is_down_is_not_asked_and_its_writes_go_to_a_fallback_as_hints(self):
        first, second, third, fourth, fifth = self.owners("k")
        self.replicas[second].state = "hung"  # would hold the write up, were it asked
        self.replicas[fourth].state = "hung"  # a fallback that is down is skipped too
        self.down = frozenset({second, fourth})
        d = self.coordinator.put("k", b"v", "text/plain", w=3)
        self.clock.advance(0)
        record = self.successResultOf(d)
        self.assertEqual(self.replicas[fifth].store.hints(second, 10), [("k", record)])
        self.assertEqual(self.replicas[second].reads + len(self.replicas[second].store.hint_counts()), 0)
        read = self.coordinator.get("k")
        self.assertEqual(self.successResultOf(read), record)
        self.assertEqual(self.replicas[second].reads, 0)

    def test_a_key_on_none_of_its_owners_is_read_from_the_members_still_moving_data(self):
        first, second, third, fourth, fifth = self.owners("k")
        store = self.replicas[fifth].store
        store.write([("k", _record(b"moving"))])  # its handoff has not run yet
        self.assertIsNone(self.successResultOf(self.coordinator.get("k")))  # everyone settled
        self.unsettled = [first, fourth, fifth]
        self.down = frozenset({fourth})
        self.assertEqual(self.successResultOf(self.coordinator.get("k")).value, b"moving")
        self.assertEqual(self.replicas[fourth].reads, 0)
        self.clock.advance(0)
        for name in (first, second, third):  # read repair reaches the owners, only them
            self.assertEqual(self.stored(name, "k").value, b"moving")
        self.assertIsNone(self.stored(fourth, "k"))

    def test_a_read_whose_ring_changed_on_the_way_asks_the_new_owners(self):
        first, second, third, fourth, fifth = self.owners("k")
        old_owner = self.replicas[first]
        answer = Deferred()
        old_owner.read_one = lambda key: answer
        coordinator = self.make(n=1, r=1, w=1)
        read = coordinator.get("k")
        # Meanwhile the ring changed: the new owner got the key, the old one dropped it.
        self.ring = Ring([name for name in NAMES if name != first])
        new_owner = self.ring.preference_list("k", 1)[0]
        self.replicas[new_owner].store.write([("k", _record(b"moved"))])
        answer.callback(None)
        self.assertEqual(self.successResultOf(read).value, b"moved")

    def late_first_answer(self, name):
        """The first read of ``name`` answers only when the Deferred returned is fired."""
        replica, answer = self.replicas[name], Deferred()
        read_one = replica.read_one
        replica.read_one = lambda key: (setattr(replica, "read_one", read_one), answer)[1]
        return answer

    def handed_off(self, key, owner, holder):
        """What a holder's handoff does: the owner takes the key, then the holder drops it."""
        self.replicas[owner].store.write([(key, _record(b"moved"))])
        self.replicas[holder].store.remove([(key, self.stored(holder, key).version)])

    def test_a_key_handed_off_while_the_read_was_on_its_way_is_read_from_its_owner(self):
        coordinator = self.make(n=1, r=1, w=1)
        owner, holder = self.owners("k", 2)
        self.replicas[holder].store.write([("k", _record(b"moved"))])
        self.unsettled = [holder]
        answer = self.late_first_answer(owner)
        read = coordinator.get("k")
        # Meanwhile the holder handed the key off and settled, and this node heard of it.
        self.handed_off("k", owner, holder)
        self.unsettled, self.moves = [], 1
        answer.callback(None)
        self.assertEqual(self.successResultOf(read).value, b"moved")

    def test_a_key_handed_off_before_its_holder_was_asked_is_read_from_its_owner(self):
        coordinator = self.make(n=1, r=1, w=1)
        owner, holder = self.owners("k", 2)
        self.replicas[holder].store.write([("k", _record(b"moved"))])
        self.unsettled = [holder]  # and this node has not heard that it settled since
        answer = self.late_first_answer(owner)
        read = coordinator.get("k")
        self.handed_off("k", owner, holder)
        answer.callback(None)
        self.assertEqual(self.successResultOf(read).value, b"moved")
        self.assertEqual(self.replicas[holder].reads, 1)

    def test_a_key_nobody_has_is_asked_of_its_owners_once_when_nothing_moves(self):
        owners = self.owners("k", 3)
        self.assertIsNone(self.successResultOf(self.coordinator.get("k")))
        self.assertEqual([self.replicas[name].reads for name in owners], [1, 1, 1])

    def test_owners_that_have_the_key_are_not_second_guessed_by_the_members_still_moving_data(self):
        first, second, third, fourth, fifth = self.owners("k")
        d = self.coordinator.delete("k")
        self.clock.advance(0)
        self.successResultOf(d)
        self.replicas[fifth].store.write([("k", _record(b"old"))])
        self.unsettled = [fifth]
        self.assertIsNone(self.successResultOf(self.coordinator.get("k")))  # the tombstone stands
        self.assertEqual(self.replicas[fifth].reads, 0)

    def test_too_few_replicas_is_a_quorum_error_naming_the_count(self):
        first, *others = self.owners("k")
        for name in others:
            self.replicas[name].state = "down"
        d = self.coordinator.put("k", b"v", "text/plain")
        self.clock.advance(0)
        failure = self.failureResultOf(d, QuorumError)
        self.assertIn("only 1 of the 2", str(failure.value))
        self.assertEqual(self.stats.quorum_failures, 1)

    def test_asking_for_more_replicas_than_exist(self):
        self.ring = Ring(["a", "b"])
        failure = self.failureResultOf(self.coordinator.put("k", b"v", "t", w=3), QuorumError)
        self.assertIn("only 2", str(failure.value))
        self.failureResultOf(self.coordinator.get("k", r=3), QuorumError)

    def test_a_smaller_cluster_lowers_the_default_quorum(self):
        self.ring = Ring(["a"])
        d = self.coordinator.put("k", b"v", "t")
        self.clock.advance(0)
        self.successResultOf(d)
        self.assertEqual(self.successResultOf(self.coordinator.get("k")).value, b"v")

    def test_a_read_answers_the_newest_version_and_repairs_stale_replicas(self):
        first, second, third, *_ = self.owners("k")
        old = self.coordinator.put("k", b"old", "t")
        self.clock.advance(0)
        old = self.successResultOf(old)
        self.replicas[third].state = "down"
        new = self.coordinator.put("k", b"new", "t", w=1)
        self.clock.advance(0)
        self.successResultOf(new)
        self.replicas[third].state = "up"
        self.replicas[third].store.write([("k", old)])  # it missed the new write
        self.assertEqual(self.successResultOf(self.coordinator.get("k", r=3)).value, b"new")
        self.clock.advance(0)
        self.assertEqual(self.stored(third, "k").value, b"new")
        self.assertEqual(self.stats.read_repairs, 1)

    def test_a_new_owner_without_the_key_does_not_hide_it(self):
        first, second, third, *_ = self.owners("k")
        d = self.coordinator.put("k", b"v", "t")
        self.clock.advance(0)
        self.successResultOf(d)
        for name in (first, second):  # as if they were new owners still receiving data
            self.replicas[name].store.remove([("k", self.stored(name, "k").version)])
        self.replicas[third].state = "hung"
        read = self.coordinator.get("k")
        self.assertNoResult(read)  # two answers agree on "missing": the third is awaited
        self.replicas[third].state = "up"
        fresh = self.coordinator.get("k")
        self.assertEqual(self.successResultOf(fresh).value, b"v")

    def test_a_read_asks_r_replicas_and_the_others_only_when_they_disagree(self):
        d = self.coordinator.put("k", b"v", "t")
        self.clock.advance(0)
        record = self.successResultOf(d)
        self.assertEqual(self.successResultOf(self.coordinator.get("k")), record)
        owners = self.owners("k", 3)
        self.assertEqual(sum(self.replicas[name].reads for name in owners), 2)
        asked = [name for name in owners if self.replicas[name].reads]
        self.replicas[asked[0]].store.remove([("k", record.version)])
        self.assertEqual(self.successResultOf(self.coordinator.get("k")), record)
        self.assertEqual(sum(self.replicas[name].reads for name in owners), 5)  # 2 + all 3
        self.clock.advance(0)
        self.assertEqual(self.stored(asked[0], "k"), record)  # and repaired

    def test_a_read_asks_the_owners_with_the_least_wait_so_a_slow_one_does_not_hold_it_up(self):
        d = self.coordinator.put("k", b"v", "t")
        self.clock.advance(0)
        record = self.successResultOf(d)
        first, second, third = self.owners("k", 3)
        self.assertNotIn("a", (first, second, third))  # this node, the coordinator, holds no copy
        self.replicas[first].state, self.replicas[first].wait = "hung", 0.05
        self.assertEqual(self.successResultOf(self.coordinator.get("k")), record)
        self.assertEqual([self.replicas[name].reads for name in (first, second, third)], [0, 1, 1])
        self.replicas[first].wait = 0.0  # no longer slow: asked again, first in the ring's order
        self.assertNoResult(self.coordinator.get("k"))
        self.assertEqual([self.replicas[name].reads for name in (first, second, third)], [1, 2, 1])

    def test_a_read_with_too_few_answers_fails(self):
        first, second, third, *_ = self.owners("k")
        self.replicas[second].state = self.replicas[third].state = "down"
        failure = self.failureResultOf(self.coordinator.get("k"), QuorumError)
        self.assertIn("only 1 of the 2", str(failure.value))

    def test_a_deleted_key_reads_as_missing_and_keeps_a_tombstone(self):
        self.coordinator.put("k", b"v", "t")
        self.clock.advance(0)
        d = self.coordinator.delete("k")
        self.clock.advance(0)
        self.successResultOf(d)
        self.assertIsNone(self.successResultOf(self.coordinator.get("k")))
        for name in self.owners("k", 3):
            self.assertTrue(self.stored(name, "k").deleted)

    def test_a_restarted_node_writes_newer_versions_even_if_its_clock_went_back(self):
        key = next(k for k in map(str, range(100)) if "a" in self.owners(k, 3))
        self.coordinator.put(key, b"old", "t")
        self.clock.advance(0)
        self.clock.rightNow -= 3600
        restarted = self.make()  # its clock starts after the newest version in its store
        restarted.put(key, b"new", "t")
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(restarted.get(key)).value, b"new")

    def test_the_primary_listing_holds_only_keys_this_node_is_first_for(self):
        keys = [f"key{i}" for i in range(200)]
        self.replicas["a"].store.write([(k, _record()) for k in keys])
        mine = self.coordinator.keys(None, 1000, primary_only=True)
        self.assertEqual(mine, sorted((k for k in keys if self.owners(k, 1) == ["a"]), key=ring_order))
        self.assertTrue(0 < len(mine) < len(keys))
        self.assertEqual(self.coordinator.keys(None, 1000, primary_only=False), sorted(keys, key=ring_order))


    def test_without_spare_nodes_a_first_owner_that_fails_at_once_does_not_end_the_write(self):
        self.ring = Ring(["a", "b", "c"])
        first, second, third = self.owners("k", 3)
        self.replicas[first].state = "down"
        d = self.coordinator.put("k", b"v", "t")
        self.clock.advance(0)
        self.successResultOf(d)
        self.assertEqual(self.stored(second, "k").value, b"v")

    def test_a_bulk_write_sends_one_batch_to_each_node(self):
        calls = {name: 0 for name in NAMES}

        def counted(name, write):
            def count(writes):
                calls[name] += 1
                return write(writes)
            return count

        for name, replica in self.replicas.items():
            replica.write = counted(name, replica.write)
        items = {f"key{i}": b"v%d" % i for i in range(300)}
        d = self.coordinator.put_many(items, "text/plain")
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), {})
        self.assertEqual(calls, {name: 1 for name in NAMES})
        for key, value in items.items():
            for name in NAMES:
                stored = self.stored(name, key)
                self.assertEqual(None if stored is None else stored.value, value if name in self.owners(key, 3) else None)

    def test_a_failed_batch_goes_to_the_next_nodes_as_hints(self):
        self.replicas["b"].state = "down"
        items = {f"key{i}": b"v" for i in range(200)}
        d = self.coordinator.put_many(items, "text/plain")
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), {})
        for_b = [key for key in items if "b" in self.owners(key, 3)]
        held = [key for name in NAMES if name != "b" for key, _ in self.replicas[name].store.hints("b", 1000)]
        self.assertEqual(sorted(held), sorted(for_b))
        self.assertTrue(for_b)

    def test_a_bulk_write_names_each_key_short_of_its_quorum(self):
        self.ring = Ring(["a", "b", "c"])
        self.replicas["c"].state = "down"
        d = self.make(w=3).put_many({"x": b"1", "y": b"2"}, "text/plain")
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), {key: "only 2 of the 3 replicas needed acknowledged the write"
                                                   for key in ["x", "y"]})
        self.assertEqual(self.stats.quorum_failures, 2)


def _record(value=b"v", timestamp=1):
    return Record(Version(timestamp, "x"), value, "t")
