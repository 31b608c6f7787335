"""Hybrid logical clock and record versions.

A timestamp packs wall-clock milliseconds in the high bits and a logical counter in
the low 16 bits, so versions order by real time when clocks agree and still move
forward when the wall clock stalls or steps back.  The writing node's name breaks
ties, which makes the order total: last writer wins.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

COUNTER_BITS = 16
COUNTER_MASK = (1 << COUNTER_BITS) - 1
#: Timestamps are below this: they fit SQLite's signed 64-bit integers, whose largest
#: value stays free to mean "after every timestamp".
TIMESTAMP_LIMIT = (1 << 63) - 1


def timestamp_at(seconds: float) -> int:
    """The lowest timestamp of a wall-clock time, in seconds since the epoch."""
    return int(seconds * 1000) << COUNTER_BITS


class Version(NamedTuple):
    """The version of a record: compared as (timestamp, node)."""

    timestamp: int
    node: str

    @property
    def wall_seconds(self) -> float:
        """The wall-clock part of the timestamp, in seconds since the epoch."""
        return (self.timestamp >> COUNTER_BITS) / 1000.0


class HybridLogicalClock:
    """Issues strictly increasing timestamps.

    ``wall`` returns the current time in seconds (``reactor.seconds`` or
    ``task.Clock.seconds``); it is the only source of time.
    """

    def __init__(self, wall: Callable[[], float]) -> None:
        self._wall = wall
        self._last = 0

    def now(self) -> int:
        """A timestamp greater than every one issued or observed before."""
        physical = timestamp_at(self._wall())
        self._last = max(physical, self._last + 1)
        return self._last

    def observe(self, timestamp: int) -> None:
        """Move past a timestamp seen elsewhere (a stored record, a peer's write)."""
        self._last = max(self._last, timestamp)
