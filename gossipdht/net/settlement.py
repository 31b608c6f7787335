"""How far the other members have moved their data to the current ring.

Each node's rebalancer says which ring it has settled: the checksum of the ring for
which it finished a round, its handoffs pushed and acknowledged and its pulls done
(``GET /dht/transfers``).  A member that has not settled this node's ring may still
hold keys whose new owners lack them: reads that find a key on none of its owners ask
those members too, and ``POST /dht/join``, ``/dht/leave`` and ``/dht/remove`` answer
only once every member has settled.  While some member has not, this node asks the
unsettled ones again every ``WATCH_SECONDS``; once all have, it asks nobody.

A node that handed keys off drops its copies only once every live member has the new
ring (``agreed``): a member still on the ring before reads those keys from it, and
knows of no other place to look.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional, Sequence

from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger

from gossipdht.core.errors import PeerError
from gossipdht.membership.member import Member
from gossipdht.net.peer import PeerClient

WATCH_SECONDS = 0.5
ASK_SECONDS = 2.0
#: How long a handoff waits for every member to have the new ring before it drops copies.
AGREEMENT_SECONDS = 5.0


def describe_pending(report: dict) -> list[str]:
    """What a member's transfers report says is left, one phrase each."""
    name = report["node"]
    lines = [f"{name} sends {t['keys']} keys to {t['to']}" for t in report["sending"]]
    lines += [f"{name} pulls {t['ranges']} ranges from {t['from']}" for t in report["receiving"]]
    return lines + describe_waiting(report)


def describe_waiting(report: dict) -> list[str]:
    """The keys a member keeps for owners that are down."""
    return [f"{report['node']} keeps {t['keys']} keys for {t['to']}, which is down" for t in report["waiting"]]


def as_text(report: dict) -> str:
    """A report as lines for a terminal: the node, its ring and whether it settled it, then what is left."""
    state = "settled" if report["settled"] == report["ring"] else "moving data"
    lines = [f"{report['node']} ring {report['ring']} {state}"]
    return "\n".join(lines + ["  " + line for line in describe_pending(report)]) + "\n"


class Settlement:
    """The last transfers report of each member, refreshed while some are unsettled."""

    log = Logger()

    def __init__(self, name: str, peers: PeerClient, reactor, local_report: Callable[[], dict],
                 members: Callable[[], Sequence[Member]], ring_checksum: Callable[[], str]) -> None:
        self.name = name
        self._peers = peers
        self._reactor = reactor
        self._local_report = local_report
        #: The live members other than this node, and the checksum of this node's ring.
        self._members = members
        self._ring_checksum = ring_checksum
        self.reports: dict[str, dict] = {}
        #: Bumped whenever a member's report names another settled ring: a read that
        #: missed a key looks again once this changed while it ran.
        self.generation = 0
        self._watch = LoopingCall(self._refresh)
        self._watch.clock = reactor

    def start(self) -> None:
        self._watch.start(WATCH_SECONDS, now=False)

    def stop(self) -> None:
        if self._watch.running:
            self._watch.stop()

    def report(self, name: str) -> Optional[dict]:
        return self._local_report() if name == self.name else self.reports.get(name)

    def unsettled(self) -> list[str]:
        """Members, this node included, not known to have settled this node's ring."""
        checksum = self._ring_checksum()
        names = [self.name] + [m.name for m in self._members()]
        return [name for name in names if not _settled(self.report(name), checksum)]

    async def _refresh(self) -> None:
        unsettled = set(self.unsettled())
        others = [m for m in self._members() if m.name in unsettled]
        if others:
            await self.ask(others)

    async def ask(self, members: Sequence[Member]) -> dict[str, Optional[dict]]:
        """Each member's transfers report, asked all at once; None where it did not answer."""
        async def one(member: Member) -> Optional[dict]:
            try:
                report = await self._peers.transfers(member.api_address, ASK_SECONDS)
            except PeerError as e:
                self.log.debug("cannot ask {name} for its transfers: {error}", name=member.name, error=e)
                return None
            previous = self.reports.get(member.name)
            if previous is None or previous["settled"] != report["settled"]:
                self.generation += 1
            self.reports[member.name] = report
            return report
        answers = await gatherResults([ensureDeferred(one(m)) for m in members])
        return {m.name: answer for m, answer in zip(members, answers)}

    async def agreed(self, checksum: str) -> bool:
        """Whether every live member has the ring of ``checksum``, asked until
        ``AGREEMENT_SECONDS`` have passed."""
        deadline = self._reactor.seconds() + AGREEMENT_SECONDS
        while True:
            answers = await self.ask(list(self._members()))
            if all(report is not None and report["ring"] == checksum for report in answers.values()):
                return True
            if self._reactor.seconds() >= deadline:
                return False
            await deferLater(self._reactor, WATCH_SECONDS / 10, lambda: None)

    async def wait(self, members: Callable[[], Sequence[Member]], checksum: Callable[[], str],
                   down: Callable[[], Iterable[str]], seconds: float) -> list[str]:
        """Ask ``members()`` until every one has settled the ring of ``checksum()`` with
        nothing left to move; what is still pending otherwise.  This node counts too
        when that ring is its own (not for a leave).  A member that is ``down()`` cannot
        hand over what it holds: that is pending until it is back or off the ring.

        Returns at once when all that is left waits for members that are down."""
        deadline = self._reactor.seconds() + seconds
        while True:
            expected = checksum()
            reports = await self.ask(list(members()))
            if expected == self._ring_checksum():
                reports[self.name] = self._local_report()
            pending = [f"{name} is down: what it holds moves once it is back or removed"
                       for name in sorted(down())]
            waiting_only = True
            for name, report in sorted(reports.items()):
                if report is None:
                    pending.append(f"{name} did not answer")
                    waiting_only = False
                elif not _settled(report, expected):
                    pending.append(f"{name} has not settled the ring {expected} yet")
                    waiting_only = False
                else:  # settled: only what waits for a member that is down is left
                    pending += describe_waiting(report)
            if not pending or waiting_only or self._reactor.seconds() >= deadline:
                return pending
            await deferLater(self._reactor, WATCH_SECONDS / 5, lambda: None)


def _settled(report: Optional[dict], checksum: str) -> bool:
    return report is not None and report["settled"] == checksum

