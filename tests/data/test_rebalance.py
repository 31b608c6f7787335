"""Rebalancing rounds on stores in memory, one fake clock."""

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock

from gossipdht.core.errors import PeerError
from gossipdht.core.hlc import HybridLogicalClock, Version, timestamp_at
from gossipdht.core.ring import Ring
from gossipdht.data.committer import GroupCommitter
from gossipdht.data.rebalance import IN_FLIGHT_SECONDS, LAST_ROUNDS, Rebalancer
from gossipdht.data.replica import LocalReplica
from gossipdht.data.stats import DataStats
from gossipdht.storage import Record
from gossipdht.storage.memory import MemoryStore


class Replicas(dict):
    local = property(lambda self: self["a"])


class As(dict):
    """The replicas as the node ``name`` sees them."""

    def __init__(self, name, replicas):
        super().__init__(replicas)
        self.local = replicas[name]


def cluster(names):
    clock = Clock()
    replicas = Replicas()
    for name in names:
        store = MemoryStore()
        replicas[name] = LocalReplica(name, store, GroupCommitter(store, clock), HybridLogicalClock(clock.seconds),
                                      DataStats())
    return clock, replicas


def held(replica):
    return set(replica.store.keys(None, 10_000))


def rebalancer_of(name, ring, clock, replicas, down=frozenset()):
    return Rebalancer(name, lambda: ring, lambda: down, As(name, replicas), 2, clock, DataStats(), 30, 86400)


def run(rebalancer, clock):
    d = ensureDeferred(rebalancer.run_round())
    clock.advance(0)
    return d.result


def round_on(ring, clock, replicas, name="a"):
    d = ensureDeferred(rebalancer_of(name, ring, clock, replicas).run_round())
    clock.advance(0)
    return d


def test_a_node_hands_off_and_drops_what_it_no_longer_owns():
    clock, replicas = cluster("abc")
    keys = [f"k{i}" for i in range(300)]
    replicas["a"].store.write([(k, Record(Version(1, "a"), b"v", "t")) for k in keys])
    ring = Ring("abc")
    assert round_on(ring, clock, replicas).result is True
    for key in keys:  # pushed to the owners of what "a" does not own, and dropped
        owners = ring.preference_list(key, 2)
        assert (key in held(replicas["a"])) == ("a" in owners)
        assert "a" in owners or all(key in held(replicas[name]) for name in owners)
    for name in "bc":  # the co-owners of "a" pull the rest in their own rounds
        assert round_on(ring, clock, replicas, name).result is True
    for key in keys:
        assert {name for name in "abc" if key in held(replicas[name])} == set(ring.preference_list(key, 2))


def test_a_node_outside_its_own_ring_keeps_everything():
    clock, replicas = cluster("abc")
    keys = [f"k{i}" for i in range(300)]
    replicas["a"].store.write([(k, Record(Version(1, "a"), b"v", "t")) for k in keys])
    assert round_on(Ring("bc"), clock, replicas).result is True  # "a" is leaving
    assert held(replicas["a"]) == set(keys)


class Failing(LocalReplica):
    """A co-replica whose scans fail while ``down``."""

    down = False

    def digests(self, *args):
        if self.down:
            raise PeerError("down")
        return super().digests(*args)


def test_periodic_rounds_leave_the_writes_in_flight_to_the_next_and_a_new_ring_compares_all():
    clock, replicas = cluster("ab")
    b = replicas["b"]
    replicas["b"] = Failing("b", b.store, GroupCommitter(b.store, clock), HybridLogicalClock(clock.seconds),
                            DataStats())
    clock.advance(1_000_000)
    ring = Ring("ab")
    rebalancer = rebalancer_of("a", ring, clock, replicas)

    def round_():
        return run(rebalancer, clock)

    def write_to_b(key, seconds_ago):
        replicas["b"].store.write([(key, Record(Version(timestamp_at(clock.seconds() - seconds_ago), "b"), b"v", "t"))])

    assert round_() is True  # the first round of a node compares everything
    write_to_b("settled", IN_FLIGHT_SECONDS + 1)
    write_to_b("in flight", 0)
    assert round_() is True
    assert held(replicas["a"]) == {"settled"}
    clock.advance(IN_FLIGHT_SECONDS + 1)
    assert round_() is True
    assert held(replicas["a"]) == {"settled", "in flight"}

    write_to_b("before the change", 0)
    rebalancer.ring_changed()
    replicas["b"].down = True
    assert round_() is False
    replicas["b"].down = False
    assert round_() is True  # the round after a failed one still compares everything
    assert "before the change" in held(replicas["a"])
    write_to_b("after", 0)
    assert round_() is True
    assert "after" not in held(replicas["a"])


def test_data_for_an_owner_that_is_down_stays_until_it_is_back_and_the_ring_still_settles():
    clock, replicas = cluster("abc")
    keys = [f"k{i}" for i in range(300)]
    replicas["a"].store.write([(k, Record(Version(1, "a"), b"v", "t")) for k in keys])
    ring = Ring("abc")
    foreign = {key for key in keys if "a" not in ring.preference_list(key, 2)}
    for_b = foreign  # with N=2 of three, what "a" does not own is owned by "b" and "c"
    rebalancer = rebalancer_of("a", ring, clock, replicas, down=frozenset("b"))
    assert rebalancer.transfers()["settled"] is None
    replicas["b"] = Failing("b", MemoryStore(), None, None, DataStats())
    replicas["b"].down = True  # nothing may be asked of a member that is down
    assert run(rebalancer, clock) is True
    report = rebalancer.transfers()
    assert report["settled"] == ring.checksum  # what the ring asks of "a" is done, but for "b"
    assert report["waiting"] == [{"to": "b", "keys": len(for_b)}]
    assert report["sending"] == report["receiving"] == []
    assert for_b and for_b <= held(replicas["a"])  # kept, for its owner that is down
    assert all(key in held(replicas["c"]) for key in foreign)  # the other owner has it all

    replicas["b"] = cluster("b")[1]["b"]
    rebalancer = rebalancer_of("a", ring, clock, replicas)  # "b" is back
    assert run(rebalancer, clock) is True
    assert rebalancer.transfers()["waiting"] == []
    assert not foreign & held(replicas["a"])
    assert for_b <= held(replicas["b"])


def test_a_failed_pull_is_reported_and_leaves_the_ring_unsettled():
    clock, replicas = cluster("ab")
    b = replicas["b"]
    replicas["b"] = Failing("b", b.store, GroupCommitter(b.store, clock), HybridLogicalClock(clock.seconds),
                            DataStats())
    replicas["b"].down = True
    ring = Ring("ab")
    rebalancer = rebalancer_of("a", ring, clock, replicas)
    assert run(rebalancer, clock) is False
    report = rebalancer.transfers()
    assert report["settled"] is None and report["ring"] == ring.checksum
    assert [t["from"] for t in report["receiving"]] == ["b"]
    replicas["b"].down = False
    assert run(rebalancer, clock) is True
    assert rebalancer.transfers()["settled"] == ring.checksum
    assert rebalancer.transfers()["receiving"] == []


def test_a_handoff_of_keys_this_node_does_not_own_unsettles_it_until_a_round_moves_them():
    clock, replicas = cluster("abc")
    ring = Ring("abc")
    rebalancer = rebalancer_of("a", ring, clock, replicas)
    replicas["a"].on_push = rebalancer.pushed
    assert run(rebalancer, clock) is True and rebalancer.transfers()["settled"] == ring.checksum
    mine = next(f"k{i}" for i in range(100) if "a" in ring.preference_list(f"k{i}", 2))
    foreign = next(f"k{i}" for i in range(100) if "a" not in ring.preference_list(f"k{i}", 2))
    replicas["a"].push([(mine, Record(Version(1, "b"), b"v", "t"), None)])
    clock.advance(0)
    assert rebalancer.transfers()["settled"] == ring.checksum
    # A sender with another ring handed "a" a key it does not own, and dropped its own copy.
    replicas["a"].push([(foreign, Record(Version(1, "b"), b"v", "t"), None)])
    clock.advance(0)
    assert rebalancer.transfers()["settled"] is None
    clock.advance(1)  # the round it scheduled
    assert rebalancer.transfers()["settled"] == ring.checksum
    assert foreign not in held(replicas["a"])
    assert all(foreign in held(replicas[name]) for name in ring.preference_list(foreign, 2))


def test_handed_off_copies_stay_until_every_member_has_the_new_ring():
    clock, replicas = cluster("abc")
    keys = [f"k{i}" for i in range(300)]
    replicas["a"].store.write([(k, Record(Version(1, "a"), b"v", "t")) for k in keys])
    ring = Ring("abc")
    answers = []

    async def agreed(checksum):
        answers.append(checksum)
        return len(answers) > 1  # a member still on the old ring, the first time
    rebalancer = Rebalancer("a", lambda: ring, frozenset, As("a", replicas), 2, clock, DataStats(), 30, 86400,
                            agreed)
    assert run(rebalancer, clock) is False
    assert held(replicas["a"]) == set(keys)  # pushed, and kept for readers on the old ring
    assert rebalancer.transfers()["settled"] is None
    assert run(rebalancer, clock) is True
    assert answers == [ring.checksum] * 2
    assert held(replicas["a"]) == {key for key in keys if "a" in ring.preference_list(key, 2)}
    assert run(rebalancer, clock) is True and len(answers) == 2  # asked once per ring


def test_the_last_rounds_are_reported_newest_first_with_what_each_did():
    clock, replicas = cluster("ab")
    replicas["b"].write([("k", Record(Version(1, "b"), b"v", "t"), None)])
    clock.advance(0)
    rebalancer = rebalancer_of("a", Ring("ab"), clock, replicas)
    assert run(rebalancer, clock) is True  # the first round compares every record: it pulls k
    clock.advance(10)
    assert run(rebalancer, clock) is True
    rounds = rebalancer.transfers()["rounds"]
    assert [(r["full"], r["complete"], r["exchanges"], r["keys_repaired"]) for r in rounds] == [
        (False, True, 1, 0), (True, True, 1, 1)]
    assert [r["ended_seconds_ago"] for r in rounds] == [0, 10]
    for _ in range(LAST_ROUNDS):
        run(rebalancer, clock)
    assert len(rebalancer.transfers()["rounds"]) == LAST_ROUNDS
