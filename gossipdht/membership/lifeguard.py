"""Lifeguard's two defences against false alarms (arXiv 1707.00788).

``Suspicion``: a suspected member is declared dead after a timeout that starts long and
shrinks toward a minimum as other members independently confirm the suspicion, so one
node's bad luck alone cannot kill a healthy member quickly.

``LocalHealth``: a node that misses acks and nacks is probably the slow one; it scales
its own probe timing up instead of accusing healthy members.
"""

from __future__ import annotations

import math


class Suspicion:
    """A suspicion's timeout, shrinking with each independent confirmation (Lifeguard)."""

    def __init__(self, start: float, accuser: str, k: int, min_timeout: float, max_timeout: float) -> None:
        self.start = start
        self._accusers = {accuser}
        self._k = k
        self._min = min_timeout
        self._max = max_timeout
        self.timeout = self._timeout()

    def confirm(self, accuser: str) -> bool:
        """Count an accuser once; True if this one was new."""
        if accuser in self._accusers:
            return False
        self._accusers.add(accuser)
        self.timeout = self._timeout()
        return True

    @property
    def confirmations(self) -> int:
        """Independent confirmations beyond the first accusation."""
        return len(self._accusers) - 1

    def _timeout(self) -> float:
        if self._k < 1:
            return self._min
        shrink = math.log(min(self.confirmations, self._k) + 1) / math.log(self._k + 1)
        return max(self._min, self._max - shrink * (self._max - self._min))

    @property
    def deadline(self) -> float:
        return self.start + self.timeout


class LocalHealth:
    """A score from 0 (healthy) to ``limit - 1``; timeouts are scaled by score + 1."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.score = 0

    def adjust(self, delta: int) -> None:
        self.score = min(self._limit - 1, max(0, self.score + delta))

    def scale(self, seconds: float) -> float:
        return seconds * (self.score + 1)
