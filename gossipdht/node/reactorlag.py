"""How late the reactor runs its timers: a timer set every 0.1 s, and how late it fires.

Work that holds the reactor thread (a long SQLite statement, a large message to
decode) delays every timer behind it, gossip's probes among them, and Lifeguard reads
late probes as ill health.  ``/dht/stats`` shows the latest lateness and the largest
of the last minute.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall

INTERVAL = 0.1
WINDOW_SECONDS = 60.0


class ReactorLag(Service):
    """A timer that measures how late the reactor fires it, every ``INTERVAL`` seconds."""

    def __init__(self, clock, interval: float = INTERVAL, window: float = WINDOW_SECONDS) -> None:
        self._clock = clock
        self._interval = interval
        self._window = window
        self._call: Optional[IDelayedCall] = None
        self._due = 0.0
        self.latest = 0.0
        # (time, lag), lags decreasing: the front is the largest of the window.
        self._largest: deque[tuple[float, float]] = deque()

    def startService(self) -> None:
        super().startService()
        self._schedule(self._clock.seconds())

    def stopService(self) -> None:
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self, now: float) -> None:
        self._due = now + self._interval
        self._call = self._clock.callLater(self._interval, self._fired)

    def _fired(self) -> None:
        now = self._clock.seconds()
        self.record(now, max(0.0, now - self._due))
        self._schedule(now)

    def record(self, now: float, lag: float) -> None:
        self.latest = lag
        while self._largest and self._largest[-1][1] <= lag:
            self._largest.pop()
        self._largest.append((now, lag))
        while self._largest[0][0] < now - self._window:
            self._largest.popleft()

    def largest(self) -> float:
        """The largest lateness of the last ``window`` seconds."""
        return self._largest[0][1] if self._largest else 0.0

    def stats(self) -> dict:
        return {"lag_ms": round(self.latest * 1000, 1), "lag_max_ms": round(self.largest() * 1000, 1)}
