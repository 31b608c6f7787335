"""Claimed members waiting to be verified (pure).

A member named in an ``Alive`` is not taken on until it answers a ping, sent to the
address claimed for it, whose seq is a nonce only this node knows.  Candidates are
bounded: once the room is full, the oldest makes way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

from gossipdht.membership.wire import Alive

Key = tuple[str, str, int]  # name, host, port


@dataclass
class Candidate:
    """A member named in an ``Alive``, not taken on until it answers a ping from its address."""

    update: Alive
    nonce: int  # the ping's seq, which the ack must carry
    next_ping: float
    expires_at: float


class Candidates:
    """The candidates by (name, host, port), oldest first, and by their ping's nonce."""

    def __init__(self) -> None:
        self._by_key: dict[Key, Candidate] = {}
        self._by_nonce: dict[int, Key] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def deadlines(self) -> Iterator[float]:
        return (min(c.next_ping, c.expires_at) for c in self._by_key.values())

    def waiting(self, update: Alive) -> bool:
        """Whether ``update``'s member waits already (then its newer incarnation is kept)."""
        candidate = self._by_key.get((update.name, update.host, update.port))
        if candidate is None:
            return False
        if update.incarnation > candidate.update.incarnation:
            candidate.update = update
        return True

    def add(self, update: Alive, nonce: int, now: float, expires_at: float, room: int) -> bool:
        """Wait for ``update``'s member; True if the oldest made way for it."""
        full = len(self._by_key) >= room
        if full:
            self._drop(next(iter(self._by_key)))
        self._by_key[(update.name, update.host, update.port)] = Candidate(update, nonce, now, expires_at)
        self._by_nonce[nonce] = (update.name, update.host, update.port)
        return full

    def answered(self, nonce: int, source: tuple[str, int]) -> Optional[Alive]:
        """The claim that the ack ``nonce`` from ``source`` verifies: from the claimed address, not just anyone's."""
        key = self._by_nonce.get(nonce)
        if key is None or source != key[1:]:
            return None
        del self._by_nonce[nonce]
        return self._by_key.pop(key).update

    def due(self, now: float) -> tuple[int, list[Candidate]]:
        """How many expired (and were dropped), and those whose ping is due at ``now``."""
        expired, due = 0, []
        for key, candidate in list(self._by_key.items()):
            if now >= candidate.expires_at:
                self._drop(key)
                expired += 1
            elif now >= candidate.next_ping:
                due.append(candidate)
        return expired, due

    def _drop(self, key: Key) -> None:
        del self._by_nonce[self._by_key.pop(key).nonce]
