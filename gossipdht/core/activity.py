"""Requests served over the last minutes, by operation: a rolling window of steps, each
with a count per latency bucket, from which the rate and the p50 and p99 of each step
come (pure; the time is passed in).

An observation costs a bisection over the bucket bounds and an increment; the rates and
quantiles are computed only when asked (``GET /dht/activity``, polled by the dashboard).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterable, Optional

#: Upper bounds of the latency buckets, in seconds: 0.1 ms to about 10 s, each 1.25
#: times the one before, so a quantile read from them is off by at most 25 %.
BOUNDS = tuple(0.0001 * 1.25 ** i for i in range(52))
STEP_SECONDS = 5.0
#: Five minutes of steps.
STEPS = 60


class _Step:
    """The requests of one operation in one step: counts by latency bucket."""

    __slots__ = ("index", "counts", "total")

    def __init__(self, index: int) -> None:
        self.index = index
        self.counts = [0] * (len(BOUNDS) + 1)  # the last: slower than every bound
        self.total = 0


class Activity:
    """The last ``steps`` steps of requests, by operation."""

    def __init__(self, operations: Iterable[str], step_seconds: float = STEP_SECONDS, steps: int = STEPS) -> None:
        self.step_seconds = step_seconds
        self.steps = steps
        self._series: dict[str, list[Optional[_Step]]] = {op: [None] * steps for op in operations}

    def observe(self, operation: str, seconds: float, now: float) -> None:
        """A request of ``operation`` answered at ``now`` after ``seconds``."""
        index = int(now // self.step_seconds)
        series = self._series[operation]
        step = series[index % self.steps]
        if step is None or step.index != index:
            step = series[index % self.steps] = _Step(index)
        step.counts[bisect_left(BOUNDS, seconds)] += 1
        step.total += 1

    def report(self, now: float) -> dict:
        """The steps completed before ``now``, oldest first: for each operation the rate
        (requests a second) and the p50 and p99 latencies in ms (None: no request)."""
        current = int(now // self.step_seconds)
        indices = range(current - self.steps + 1, current)
        operations = {}
        for operation, series in self._series.items():
            steps = [series[i % self.steps] for i in indices]
            steps = [step if step is not None and step.index == i else None for step, i in zip(steps, indices)]
            operations[operation] = {
                "rate": [0.0 if s is None else round(s.total / self.step_seconds, 3) for s in steps],
                "p50_ms": [None if s is None else quantile_ms(s.counts, s.total, 0.5) for s in steps],
                "p99_ms": [None if s is None else quantile_ms(s.counts, s.total, 0.99) for s in steps],
            }
        return {"step_seconds": self.step_seconds, "operations": operations}


def quantile_ms(counts: list[int], total: int, q: float) -> float:
    """The ``q`` quantile of a step's latencies in ms, interpolated within its bucket
    (as Prometheus' ``histogram_quantile``); the slowest bucket answers its lower bound."""
    rank = q * total
    seen = 0
    for bucket, count in enumerate(counts):
        if count and seen + count >= rank:
            if bucket == len(BOUNDS):
                return round(BOUNDS[-1] * 1000, 3)
            low = BOUNDS[bucket - 1] if bucket else 0.0
            return round((low + (BOUNDS[bucket] - low) * (rank - seen) / count) * 1000, 3)
        seen += count
    raise ValueError("a quantile of no requests")
