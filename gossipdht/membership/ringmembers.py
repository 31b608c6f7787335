"""Which members the ring is made of (pure).

A failure is not a departure: a member that is dead keeps its place on the ring for
``delay`` seconds, as in Dynamo, Riak and Cassandra, so that a short outage moves no
data.  Meanwhile its writes go to fallback nodes as hints and reads use the other
owners.  Members that left, or that an operator removed, are off the ring at once.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Optional

from gossipdht.membership.member import LIVE, Member, State


class RingMembers(NamedTuple):
    """The ring's members, those of them that are down, and when that next changes."""

    names: list[str]
    down: frozenset[str]
    #: When a down member's delay ends (None while nobody is down).
    next_change: Optional[float]


def ring_members(members: Iterable[Member], now: float, delay: float) -> RingMembers:
    names: list[str] = []
    down: set[str] = set()
    expiries: list[float] = []
    for member in members:
        if member.state in LIVE:
            names.append(member.name)
        elif member.state is State.DEAD and now < member.since + delay:
            names.append(member.name)
            down.add(member.name)
            expiries.append(member.since + delay)
    return RingMembers(sorted(names), frozenset(down), min(expiries, default=None))
