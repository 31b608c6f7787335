"""How far each member's wall clock is from this node's (pure).

Every ack of a probe carries the wall clock of the member that sends it.  A direct ack
gives one sample: the round trip, and the offset as NTP computes it, the member's time
minus the midpoint of the round trip here.  As in NTP's clock filter, the estimate is
the offset of the sample with the shortest round trip among the last ``SAMPLES``: a
round trip stretched by a busy process or a queue says little about the clocks.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Optional

SAMPLES = 8


class ClockOffsets:
    """The estimated wall-clock offset of each member, in seconds (theirs minus ours)."""

    def __init__(self) -> None:
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def add(self, name: str, sent: float, received: float, their_time: float) -> None:
        """A probe sent at ``sent`` was acked at ``received``; the ack said ``their_time``."""
        samples = self._samples.setdefault(name, deque(maxlen=SAMPLES))
        samples.append((received - sent, their_time - (sent + received) / 2))

    def offset(self, name: str) -> Optional[float]:
        samples = self._samples.get(name)
        return min(samples)[1] if samples else None

    def forget(self, name: str) -> None:
        self._samples.pop(name, None)

    def off_from_most(self, others: Iterable[str], limit: float) -> list[str]:
        """The members whose offset exceeds ``limit``, when they are more than half of
        ``others`` (this node's clock is then the odd one); empty otherwise."""
        others = list(others)
        beyond = [name for name in others if abs(self.offset(name) or 0.0) > limit]
        return beyond if len(beyond) * 2 > len(others) else []
