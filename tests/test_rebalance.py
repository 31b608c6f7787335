"""Rebalancing rounds on stores in memory, one fake clock."""

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock

from gossipdht.committer import GroupCommitter
from gossipdht.hlc import HybridLogicalClock, Version
from gossipdht.rebalance import Rebalancer
from gossipdht.replica import LocalReplica
from gossipdht.ring import Ring
from gossipdht.stats import DataStats
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


def round_on(ring, clock, replicas, name="a"):
    rebalancer = Rebalancer(name, lambda: ring, As(name, replicas), 2, clock, DataStats(), 30, 86400)
    d = ensureDeferred(rebalancer.run_round())
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
