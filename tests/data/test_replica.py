"""This node's store as a replica: what runs off the reactor thread, and in what steps."""

from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock

from gossipdht.core.hlc import HybridLogicalClock, Version
from gossipdht.data.committer import GroupCommitter
from gossipdht.data.replica import REMOVE_STEP, LocalReplica
from gossipdht.data.stats import DataStats
from gossipdht.storage import Record, open_store


def test_a_handoff_drop_runs_in_the_thread_one_short_transaction_at_a_time(tmp_path):
    store = open_store("sqlite", str(tmp_path))
    clock = Clock()
    in_thread = []

    def run(function, *args):
        in_thread.append((function.__name__, len(args[0])))
        return maybeDeferred(function, *args)
    local = LocalReplica("a", store, GroupCommitter(store, clock), HybridLogicalClock(clock.seconds), DataStats(), run)
    count = REMOVE_STEP * 2 + 10
    records = [(f"k{i}", Record(Version(i + 1, "a"), b"v", "t")) for i in range(count)]
    store.write(records)
    removed = local.remove([(key, record.version) for key, record in records])
    assert removed.result == count
    assert in_thread == [("remove", REMOVE_STEP), ("remove", REMOVE_STEP), ("remove", 10)]
    assert store.counts() == (0, 0)
    store.close()
