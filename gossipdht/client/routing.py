"""Where the client sends each request (pure: time and randomness passed in).

The client computes the ring as every node does, from the names of the members on it
(``/dht/members``, ``in_ring``) and the ring's vnodes (``/dht/ring``), and sends a
request for a key to the first of its owners that is live and healthy (``scores``): that
node coordinates the request as an owner, and the hop from a non-owner to the owners is
saved.  Then the other owners, then any other live member: each of them coordinates it
too.  The node's ring checksum comes back on every answer (``CHECKSUM_HEADER``); when it
differs from the client's, or a node did not answer, the client reads the members again,
at most once every ``REFRESH_SECONDS``, as Cassandra's driver refreshes its topology with
a debounce.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from gossipdht.client.scores import ErrorScores
from gossipdht.core.address import Address
from gossipdht.core.ring import Ring

#: Member states that answer requests (a suspect may only be slow).
LIVE = ("alive", "suspect")
#: The least time between two readings of the members.
REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class Member:
    """A member as ``/dht/members`` shows it, with where its HTTP API listens."""

    name: str
    address: Address
    state: str
    in_ring: bool

    @property
    def live(self) -> bool:
        return self.state in LIVE


class ClusterView:
    """The cluster as one node described it: its members, the ring computed from them, and N."""

    def __init__(self, members: Sequence[Member], vnodes: int, replicas: int) -> None:
        self.members = {member.name: member for member in members}
        self.ring = Ring([member.name for member in members if member.in_ring], vnodes)
        self.replicas = replicas

    @classmethod
    def from_answers(cls, members: Any, ring: Any) -> ClusterView:
        """From the JSON of ``/dht/members`` and ``/dht/ring``; ValueError if they are not."""
        try:
            listed = [Member(m["name"], Address(m["address"], int(m["port"])), m["state"], bool(m["in_ring"]))
                      for m in members]
            return cls(listed, int(ring["vnodes"]), int(ring["replicas"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a member list and ring: {e!r}") from None

    @property
    def checksum(self) -> str:
        return self.ring.checksum

    def owners(self, key: str) -> list[Member]:
        """The key's preference list, as ``/dht/owners`` gives it (members down included)."""
        return [self.members[name] for name in self.ring.preference_list(key, self.replicas)]


class Router:
    """The client's view of the cluster, its nodes' error scores, and when to read the members again."""

    def __init__(self, seeds: Sequence[Address], rng: random.Random, refresh_seconds: float = REFRESH_SECONDS,
                 scores: Optional[ErrorScores] = None) -> None:
        if not seeds:
            raise ValueError("give at least one node, as HOST:PORT")
        self.seeds = list(seeds)
        self.rng = rng
        self.refresh_seconds = refresh_seconds
        self.scores = scores or ErrorScores()
        self.view: Optional[ClusterView] = None
        #: Whether something said the view may be out of date.
        self.stale = False
        self._refreshed_at: Optional[float] = None

    # -- where a request goes ---------------------------------------------------------------

    def targets(self, key: Optional[str], now: float) -> list[Address]:
        """The nodes to try for a request, best first: for a key, its live owners in ring
        order (the healthy ones first), then the other live members; for a request about
        no key, the live members.  Healthy non-owners come in random order, to spread the
        load; unhealthy nodes after them, the least unhealthy first; the seeds last."""
        view = self.view
        if view is None:
            return self._ordered(self.seeds, now)
        owners = [m.address for m in view.owners(key) if m.live] if key is not None else []
        others = [m.address for m in view.members.values() if m.live and m.address not in owners]
        healthy = [a for a in owners if self.scores.healthy(a, now)]
        chosen = healthy + self._ordered([a for a in owners if a not in healthy] + others, now)
        return chosen + [seed for seed in self._ordered(self.seeds, now) if seed not in chosen]

    def _ordered(self, addresses: list[Address], now: float) -> list[Address]:
        """Healthy ones in random order, then the others by their score."""
        healthy = [a for a in addresses if self.scores.healthy(a, now)]
        self.rng.shuffle(healthy)
        return healthy + sorted((a for a in addresses if a not in healthy), key=lambda a: self.scores.score(a, now))

    # -- what answers say --------------------------------------------------------------------

    def failed(self, address: Address, now: float) -> None:
        """``address`` did not answer: it scores an error, and the members may have changed."""
        self.scores.failed(address, now)
        self.stale = True

    def answered(self, checksum: Optional[str]) -> None:
        """A node answered with its ring's checksum (None: it sent none)."""
        if checksum is not None and self.view is not None and checksum != self.view.checksum:
            self.stale = True

    # -- reading the members again -------------------------------------------------------------

    def refresh_due(self, now: float) -> bool:
        """Whether to read the members now: never read yet, or stale and not read for a while."""
        if self.view is None:
            return True
        return self.stale and (self._refreshed_at is None or now - self._refreshed_at >= self.refresh_seconds)

    def refreshing(self, now: float) -> list[Address]:
        """A reading starts: the nodes to ask, best first; no other is due for a while."""
        self._refreshed_at = now
        return self.targets(None, now)

    def install(self, view: ClusterView, checksum: Optional[str]) -> None:
        """The members as read, with the checksum of the ring the node that told them has:
        when it is not the ring computed from them (the ring changed between the two
        answers), the view stays stale and is read again."""
        self.view = view
        self.stale = checksum != view.checksum

    def split(self, keys: Sequence[str], now: float) -> list[list[str]]:
        """``keys`` grouped by the node each goes to first, for a bulk write per node."""
        groups: dict[Address, list[str]] = {}
        for key in keys:
            groups.setdefault(self.targets(key, now)[0], []).append(key)
        return list(groups.values())
