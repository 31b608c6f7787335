from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from gossipdht.core.address import Address
from gossipdht.node.snapshot import DELAY_SECONDS, Snapshot, load


def test_a_change_is_written_at_once_then_at_most_once_a_second(tmp_path):
    path = str(tmp_path / "members.json")
    members = [("a", Address("10.0.0.1", 80))]
    clock = Clock()
    snapshot = Snapshot(path, lambda: members, clock)
    snapshot.changed()  # just joined: on disk before a crash can take it
    assert load(path) == [Address("10.0.0.1", 80)]
    members.append(("b", Address("::1", 81)))
    snapshot.changed()
    snapshot.changed()
    assert load(path) == [Address("10.0.0.1", 80)] and len(clock.getDelayedCalls()) == 1
    clock.advance(DELAY_SECONDS)
    assert load(path) == [Address("10.0.0.1", 80), Address("::1", 81)]
    members.clear()
    snapshot.write()  # at shutdown: at once
    assert load(path) == []


def test_a_missing_or_unreadable_snapshot_means_no_seeds(tmp_path):
    assert load(str(tmp_path / "none.json")) == []
    for junk in ("{", '{"members": [{"host": "h"}]}', '{"members": 5}', "\xff"):
        bad = tmp_path / "bad.json"
        bad.write_text(junk, encoding="latin-1")
        with capturedLogs() as events:
            assert load(str(bad)) == []
        assert any("unreadable" in e["log_format"] for e in events)


def test_a_restarted_node_keeps_its_snapshot_until_it_knows_a_member_again(tmp_path):
    path = str(tmp_path / "members.json")
    before = [("a", Address("10.0.0.1", 80)), ("b", Address("10.0.0.2", 80))]
    Snapshot(path, lambda: before, Clock()).write()
    members = []
    snapshot = Snapshot(path, lambda: members, Clock())
    assert snapshot.seeds == [Address("10.0.0.1", 80), Address("10.0.0.2", 80)]
    snapshot.write()  # stopped (or changed) before it rejoined: the file still names its cluster
    assert load(path) == snapshot.seeds
    members.append(before[1])
    snapshot.write()
    assert load(path) == [Address("10.0.0.2", 80)]
    members.clear()
    snapshot.write()  # rejoined, then left: alone from now on
    assert load(path) == []
