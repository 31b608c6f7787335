"""Each node's recent errors as a score that decays by half every ten seconds, as Riak's
Python client keeps them (``riak.node.Decaying``), and which nodes count as healthy (pure:
the time is passed in).

A node that did not answer gets 1 added; it counts as healthy again once its score has
decayed under ``HEALTHY``, about 33 s after a single failure, so a node that failed is
tried after the others for a while rather than for ever.
"""

from __future__ import annotations

from typing import Hashable

#: Seconds for a score to halve (Riak: ``log(0.5) / 10`` as the decay rate).
HALF_LIFE = 10.0
#: A node under this score is healthy (Riak's ``_choose_node`` takes the nodes under 0.1).
HEALTHY = 0.1


class DecayingScore:
    """A number that halves every ``half_life`` seconds."""

    __slots__ = ("half_life", "_value", "_at")

    def __init__(self, half_life: float = HALF_LIFE) -> None:
        self.half_life = half_life
        self._value = 0.0
        self._at = 0.0

    def value(self, now: float) -> float:
        elapsed = max(0.0, now - self._at)  # a clock that went back decays nothing
        return self._value * 0.5 ** (elapsed / self.half_life)

    def add(self, amount: float, now: float) -> None:
        self._value = self.value(now) + amount
        self._at = now


class ErrorScores:
    """The decaying error score of every node that failed; nodes never seen failing score 0."""

    def __init__(self, half_life: float = HALF_LIFE) -> None:
        self.half_life = half_life
        self._scores: dict[Hashable, DecayingScore] = {}

    def failed(self, node: Hashable, now: float) -> None:
        self._scores.setdefault(node, DecayingScore(self.half_life)).add(1.0, now)

    def score(self, node: Hashable, now: float) -> float:
        score = self._scores.get(node)
        return 0.0 if score is None else score.value(now)

    def healthy(self, node: Hashable, now: float) -> bool:
        return self.score(node, now) < HEALTHY
