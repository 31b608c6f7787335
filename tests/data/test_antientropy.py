"""Anti-entropy between two stores in memory: only what differs travels, both ways."""

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock

from gossipdht.core.hashing import RING_SIZE
from gossipdht.core.hlc import HybridLogicalClock, Version
from gossipdht.data import antientropy
from gossipdht.data.antientropy import differing_leaves, exchange
from gossipdht.data.committer import GroupCommitter
from gossipdht.data.replica import LocalReplica
from gossipdht.data.stats import DataStats
from gossipdht.storage import Record
from gossipdht.storage.memory import MemoryStore

WHOLE = [(0, RING_SIZE)]


class Immediate(Clock):
    """Group commits run at once: ``callLater(0, f)`` calls ``f`` now."""

    def callLater(self, delay, f, *args, **kwargs):
        f(*args, **kwargs)


def replica(name):
    store = MemoryStore()
    return LocalReplica(name, store, GroupCommitter(store, Immediate()), HybridLogicalClock(lambda: 0), DataStats())


def rec(ts, value=b"v", deleted=False):
    return Record(Version(ts, "w"), b"" if deleted else value, "t", deleted)


def version_lists_asked(*sides):
    """The names of the sides asked for their version lists from now on, in order."""
    asked = []
    for side in sides:
        side.versions = lambda *args, side=side: asked.append(side.name) or LocalReplica.versions(side, *args)
    return asked


def run(coroutine):
    """Everything here is local and synchronous: the result is there at once."""
    d = ensureDeferred(coroutine)
    assert d.called
    return d.result


def test_equal_stores_compare_with_one_digest_and_send_nothing():
    a, b = replica("a"), replica("b")
    items = [(f"k{i}", rec(i)) for i in range(5000)]
    a.store.write(items)
    b.store.write(items)
    assert run(differing_leaves(a, b, WHOLE)) == []
    repaired = run(exchange(a, b, WHOLE, push=True, pull=True))
    assert (repaired.pushed, repaired.pulled) == (0, 0)


def test_only_the_differing_keys_travel_and_the_newer_version_wins(monkeypatch):
    monkeypatch.setattr(antientropy, "LEAF_KEYS", 50)
    a, b = replica("a"), replica("b")
    items = [(f"k{i}", rec(10)) for i in range(3000)]
    a.store.write(items)
    b.store.write(items)
    a.store.write([("k1", rec(20, b"newer on a")), ("only-a", rec(5))])
    b.store.write([("k2", rec(30, deleted=True)), ("only-b", rec(5))])
    leaves = run(differing_leaves(a, b, WHOLE))
    assert 1 <= len(leaves) <= 4 and all(size <= 50 for _, size in leaves)  # the tree narrowed it down
    repaired = run(exchange(a, b, WHOLE, push=True, pull=True))
    assert (repaired.pushed, repaired.pulled) == (2, 2)
    for store in (a.store, b.store):
        assert store.get("k1").value == b"newer on a"
        assert store.get("k2").deleted  # the deletion travels and is not undone
        assert store.get("only-a") and store.get("only-b")
    assert a.store.digests(WHOLE) == b.store.digests(WHOLE)


def test_push_only_leaves_the_local_side_alone():
    a, b = replica("a"), replica("b")
    a.store.write([("mine", rec(1))])
    b.store.write([("theirs", rec(1))])
    run(exchange(a, b, WHOLE, push=True, pull=False))
    assert b.store.get("mine") and a.store.get("theirs") is None


def test_pull_only_leaves_the_remote_side_alone():
    a, b = replica("a"), replica("b")
    a.store.write([("mine", rec(1))])
    b.store.write([("theirs", rec(1))])
    assert run(exchange(a, b, WHOLE, push=False, pull=True)).pulled == 1
    assert a.store.get("theirs") and b.store.get("mine") is None


def test_scans_of_a_store_that_allows_it_run_through_the_thread_runner(tmp_path):
    from twisted.internet.defer import maybeDeferred

    from gossipdht.storage import open_store

    ran = {"memory": [], "sqlite": []}

    for engine in ran:
        def in_thread(f, *args, engine=engine):
            ran[engine].append(f.__name__)
            return maybeDeferred(f, *args)

        store = open_store(engine, str(tmp_path / engine))
        local = LocalReplica(engine, store, GroupCommitter(store, Immediate()), HybridLogicalClock(lambda: 0),
                             DataStats(), in_thread)
        local.write([("k", rec(1), None)])
        assert run(exchange(local, replica("b"), WHOLE, push=True, pull=True)).pushed == 1
        store.close()
    assert ran["memory"] == [] and set(ran["sqlite"]) == {"digests", "versions", "get_many"}


def test_leaves_that_converged_since_they_were_found_cost_no_version_comparison():
    a, b = replica("a"), replica("b")
    a.store.write([(f"k{i}", rec(1)) for i in range(100)])
    b.store.write([(f"k{i}", rec(1)) for i in range(99)])
    leaves = [leaf for leaf, _ in run(differing_leaves(a, b, WHOLE))]
    assert leaves
    b.store.write([("k99", rec(1))])  # the write in flight landed meanwhile
    compared = version_lists_asked(a, b)
    repaired = antientropy.Repaired()
    run(antientropy._repair(a, b, leaves, True, True, None, repaired))
    assert compared == [] and (repaired.pushed, repaired.pulled) == (0, 0)


def test_records_from_the_bound_on_are_left_out_and_older_ones_still_travel():
    a, b = replica("a"), replica("b")
    items = [(f"k{i}", rec(10)) for i in range(3000)]
    a.store.write(items)
    b.store.write(items)
    a.store.write([(f"a-in-flight{i}", rec(100 + i)) for i in range(50)])
    b.store.write([("b-in-flight", rec(100))])
    compared = version_lists_asked(a, b)
    repaired = run(exchange(a, b, WHOLE, push=True, pull=True, before=100))
    assert compared == [] and (repaired.pushed, repaired.pulled) == (0, 0)
    b.store.write([("missed", rec(99))])
    repaired = run(exchange(a, b, WHOLE, push=True, pull=True, before=100))
    assert (repaired.pushed, repaired.pulled) == (0, 1)
    assert a.store.get("missed") and a.store.get("b-in-flight") is None and b.store.get("a-in-flight0") is None
