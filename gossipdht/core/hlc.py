"""Hybrid logical clock and record versions.

A timestamp packs wall-clock milliseconds in the high bits and a logical counter in
the low 16 bits, so versions order by real time when clocks agree and still move
forward when the wall clock stalls or steps back.  The writing node's name breaks
ties, which makes the order total: last writer wins.

Given a place to keep it, the clock does not go back across restarts either: before
it issues a timestamp it durably reserves a high-water mark above it, as CockroachDB
and Spanner-style clocks do, and the restarted clock starts from the last mark.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

COUNTER_BITS = 16
#: Timestamps are below this: they fit SQLite's signed 64-bit integers, whose largest
#: value stays free to mean "after every timestamp".
TIMESTAMP_LIMIT = (1 << 63) - 1
#: How far ahead of the timestamps it issues the clock reserves: one durable write of
#: the mark per this much issued time at most.
RESERVE_SECONDS = 1.0


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
    ``task.Clock.seconds``); it is the only source of time.  ``reserved`` is the mark
    an earlier run reserved; ``reserve`` durably records a new one.
    """

    def __init__(self, wall: Callable[[], float], reserved: int = 0,
                 reserve: Optional[Callable[[int], None]] = None) -> None:
        self._wall = wall
        # Every timestamp an earlier run issued is at most its reservation, whatever the
        # wall clock says now, and whichever nodes store the records it versioned.
        self._last = reserved
        self._reserved = reserved
        self._reserve = reserve

    def now(self) -> int:
        """A timestamp greater than every one issued or observed before."""
        issued = max(timestamp_at(self._wall()), self._last + 1)
        if self._reserve is not None and issued > self._reserved:
            # Reserve ahead so that under load only about one write per RESERVE_SECONDS
            # waits for the store; if it fails, nothing was issued.
            mark = issued + timestamp_at(RESERVE_SECONDS)
            self._reserve(mark)
            self._reserved = mark
        self._last = issued
        return issued

    def observe(self, timestamp: int) -> None:
        """Move past a timestamp seen elsewhere (a stored record, a peer's write)."""
        self._last = max(self._last, timestamp)
