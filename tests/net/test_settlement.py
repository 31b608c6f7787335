"""What a node knows of the other members' progress to its ring: fake peers, one fake clock."""

from twisted.internet.defer import ensureDeferred, succeed
from twisted.internet.task import Clock

from gossipdht.core.errors import PeerError
from gossipdht.membership.member import Member, State
from gossipdht.net.settlement import WATCH_SECONDS, Settlement


def member(name):
    return Member(name, "10.0.0.1", 1, 1, 0, State.ALIVE, 0.0)


class Peers:
    """Answers each member's transfers report from ``reports``; counts the questions."""

    def __init__(self):
        self.reports, self.asked = {}, []

    def transfers(self, address, timeout):
        name = self.by_address[address]
        self.asked.append(name)
        report = self.reports[name]
        if report is None:
            raise PeerError(f"{name} is unreachable")
        return succeed(report)


def report(name, ring, settled, waiting=()):
    return {"node": name, "ring": ring, "settled": settled, "sending": [], "receiving": [],
            "waiting": [{"to": to, "keys": 3} for to in waiting]}


def settlement(ring="R1", others=("b", "c")):
    clock, peers = Clock(), Peers()
    members = [member(n) for n in others]
    for i, m in enumerate(members):
        m.api_port = 100 + i
    peers.by_address = {m.api_address: m.name for m in members}
    local = {"report": report("a", ring, ring)}
    s = Settlement("a", peers, clock, lambda: local["report"], lambda: members, lambda: ring)
    return s, peers, clock, local


def test_members_are_asked_while_unsettled_and_no_longer_once_all_settled():
    s, peers, clock, _ = settlement()
    peers.reports = {"b": report("b", "R1", "R0"), "c": report("c", "R1", "R1")}
    s.start()
    assert s.unsettled() == ["b", "c"]  # nothing heard yet
    clock.advance(WATCH_SECONDS)
    assert s.unsettled() == ["b"] and sorted(peers.asked) == ["b", "c"]
    peers.reports["b"] = report("b", "R1", "R1")
    clock.advance(WATCH_SECONDS)
    assert s.unsettled() == [] and peers.asked[2:] == ["b"]  # only the unsettled one again
    clock.advance(WATCH_SECONDS * 10)
    assert len(peers.asked) == 3  # a settled cluster is asked nothing
    s.stop()


def test_wait_answers_once_all_settled_and_at_once_when_only_members_down_are_left():
    s, peers, clock, _ = settlement()
    peers.reports = {"b": report("b", "R1", "R1", waiting=["d"]), "c": report("c", "R1", "R1")}
    result = ensureDeferred(s.wait(lambda: s._members(), lambda: "R1", lambda: {"d"}, 60))
    clock.advance(0)
    assert result.result == ["d is down: what it holds moves once it is back or removed",
                             "b keeps 3 keys for d, which is down"]
    peers.reports = {"b": report("b", "R1", "R1"), "c": None}  # waited for, up to the deadline
    result = ensureDeferred(s.wait(lambda: s._members(), lambda: "R1", frozenset, 1))
    for _ in range(20):
        clock.advance(0.1)
    assert result.result == ["c did not answer"]


def test_handed_off_copies_wait_until_every_member_has_the_ring():
    s, peers, clock, _ = settlement()
    peers.reports = {"b": report("b", "R0", "R0"), "c": report("c", "R1", None)}
    agreed = ensureDeferred(s.agreed("R1"))
    clock.advance(0)
    assert not agreed.called
    peers.reports["b"] = report("b", "R1", None)
    clock.advance(WATCH_SECONDS)
    assert agreed.result is True
