"""Consistent hashing with virtual nodes (pure).

Each member owns ``vnodes`` tokens on a 64-bit ring, derived from its name with a
stable hash (never Python's salted ``hash()``), so every node that knows the same
members computes the same ring.  A key belongs to the first member clockwise from its
hash; its preference list is the first N distinct members from there.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from functools import cached_property, lru_cache
from typing import Iterable

from gossipdht.core.hashing import RING_SIZE, token

#: 1,024 tokens a member keep the largest of 10 members within 1.08 x the mean share
#: (measured over 12 sets of names; 256 tokens reach 1.11).
DEFAULT_VNODES = 1024
#: The header of a node's answers under ``/db`` that carries its ring's checksum: a client
#: that places keys itself (``gossipdht.client``) sees by it that its ring is out of date.
CHECKSUM_HEADER = "Gossipdht-Ring"


@lru_cache(maxsize=4096)
def member_tokens(name: str, vnodes: int) -> tuple[int, ...]:
    """A member's tokens never change, so a new ring only re-sorts known tokens."""
    return tuple(token(f"{name}#{i}") for i in range(vnodes))


class Ring:
    """Consistent hashing with virtual nodes: tokens, owners of a key, preference lists of distinct members, a checksum."""

    def __init__(self, members: Iterable[str], vnodes: int = DEFAULT_VNODES) -> None:
        self.members = sorted(set(members))
        self.vnodes = vnodes
        points = sorted((t, name) for name in self.members for t in member_tokens(name, vnodes))
        self._tokens = [t for t, _ in points]
        self._owners = [name for _, name in points]
        self._placements: dict[int, list[tuple[int, int, tuple[str, ...]]]] = {}
        self._slices: dict[int, list[str]] = {}
        self._lists: dict[tuple[int, int], tuple[str, ...]] = {}

    def preference_list(self, key: str, n: int) -> list[str]:
        """The first ``n`` distinct members clockwise from the key's hash."""
        if not self._tokens:
            return []
        start = bisect_right(self._tokens, token(key))
        found = self._lists.get((start, n))
        if found is None:  # the walk is the same for every key between two points: kept
            found = self._lists[(start, n)] = tuple(self._owners_from(start, n))
        return list(found)

    def _owners_from(self, start: int, n: int) -> list[str]:
        n = min(n, len(self.members))
        chosen: list[str] = []
        size = len(self._owners)
        for offset in range(size):
            owner = self._owners[(start + offset) % size]
            if owner not in chosen:
                chosen.append(owner)
                if len(chosen) == n:
                    break
        return chosen

    def placement(self, n: int) -> list[tuple[int, int, tuple[str, ...]]]:
        """The whole ring as ``(low, high, owners)``: keys whose token is in
        ``[low, high)`` have that preference list.  Neighbouring arcs with the same list
        are merged; the arc that wraps past zero comes as two ranges."""
        if n not in self._placements:
            self._placements[n] = self._compute_placement(n)
        return self._placements[n]

    def _compute_placement(self, n: int) -> list[tuple[int, int, tuple[str, ...]]]:
        if not self._tokens:
            return []
        # Tokens in [tokens[i - 1], tokens[i]) belong to the owners from index i on.
        bounds = [0] + self._tokens + [RING_SIZE]
        arcs = []
        for i in range(len(bounds) - 1):
            low, high = bounds[i], bounds[i + 1]
            if low == high:
                continue
            owners = tuple(self._owners_from(i % len(self._tokens), n))
            if arcs and arcs[-1][2] == owners and arcs[-1][1] == low:
                arcs[-1] = (arcs[-1][0], high, owners)
            else:
                arcs.append((low, high, owners))
        return arcs

    def slices(self, count: int) -> list[str]:
        """The ring cut into ``count`` equal arcs clockwise from token 0, each named by the
        member that is the primary owner of most of it: the tokens as a screen can draw
        them (at 1,024 tokens a member, an arc of 720 holds several)."""
        if count not in self._slices:
            self._slices[count] = self._compute_slices(count)
        return self._slices[count]

    def _compute_slices(self, count: int) -> list[str]:
        if not self._tokens:
            return []
        held: list[dict[str, int]] = [{} for _ in range(count)]
        for low, high, (owner,) in self.placement(1):
            index = low * count // RING_SIZE
            while low < high:
                end = min(high, (index + 1) * RING_SIZE // count)
                held[index][owner] = held[index].get(owner, 0) + end - low
                low, index = end, index + 1
        return [max(arc, key=arc.__getitem__) for arc in held]

    @cached_property
    def checksum(self) -> str:
        """Equal on every node that computed the ring from the same members.  Asked on
        every transfers report and read miss; a ring never changes, so computed once."""
        text = f"{self.vnodes}\n" + "\n".join(self.members)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def shares(self) -> dict[str, float]:
        """Each member's fraction of the key space as the primary owner."""
        shares = dict.fromkeys(self.members, 0.0)
        for i, owner in enumerate(self._owners):
            previous = self._tokens[i - 1] if i else self._tokens[-1] - RING_SIZE
            shares[owner] += (self._tokens[i] - previous) / RING_SIZE
        return shares

    def replica_shares(self, n: int) -> dict[str, float]:
        """Each member's fraction of the key space it holds a copy of, as one of a key's first ``n`` owners."""
        held = dict.fromkeys(self.members, 0)
        for low, high, owners in self.placement(n):
            for owner in owners:
                held[owner] += high - low  # whole tokens: a member holding every key gets exactly 1.0
        return {name: tokens / RING_SIZE for name, tokens in held.items()}
