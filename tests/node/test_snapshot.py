from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from gossipdht.core.address import Address
from gossipdht.node.snapshot import DELAY_SECONDS, Snapshot, load


def test_changes_are_written_at_most_once_a_second_and_read_back(tmp_path):
    path = str(tmp_path / "members.json")
    members = [("a", Address("10.0.0.1", 80))]
    clock = Clock()
    snapshot = Snapshot(path, lambda: members, clock)
    snapshot.changed()
    snapshot.changed()
    assert load(path) == [] and len(clock.getDelayedCalls()) == 1
    members.append(("b", Address("::1", 81)))
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
