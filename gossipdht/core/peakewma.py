"""How long a member takes to answer, as a peak-sensitive moving average (Finagle's
``PeakEwma``, which its and Linkerd's load balancers use to steer away from slow
servers): an answer slower than the average raises it at once, faster ones bring it down
over ``decay`` seconds, and with no answer it decays toward zero, so that a member left
alone for being slow is tried again.

Pure: the caller passes the time in.
"""

from __future__ import annotations

import math

#: Seconds over which the average forgets (Finagle's default ``decayTime``).
DECAY_SECONDS = 10.0


class PeakEwma:
    """A member's answer time: up at once on a slower answer, down over ``decay`` seconds."""

    def __init__(self, decay: float = DECAY_SECONDS) -> None:
        self.decay = decay
        self._seconds = 0.0
        self._at = 0.0

    def observe(self, seconds: float, now: float) -> None:
        """An answer that took ``seconds``, received at ``now``."""
        kept = self._kept(now)
        if seconds > self._seconds:
            self._seconds = seconds
        else:
            self._seconds = self._seconds * kept + seconds * (1.0 - kept)
        self._at = now

    def seconds(self, now: float) -> float:
        """The average at ``now``: decayed toward zero since the last answer."""
        return self._seconds * self._kept(now)

    def _kept(self, now: float) -> float:
        return math.exp(-max(now - self._at, 0.0) / self.decay)
