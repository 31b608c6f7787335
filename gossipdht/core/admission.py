"""What a node admits on its HTTP port: connection slots with a reserve that only calls
between nodes may use, a budget of request-body bytes in flight, and its refusals,
counted and summed up for the log at most once an interval.

Pure: the caller passes the time in.
"""

from __future__ import annotations

from typing import Optional

#: Kinds of connection: a client's; one taken from the reserve, which must become a call
#: between nodes (an ``/internal/rpc`` upgrade) or is refused; a call between nodes.
CLIENT, RESERVE, INTERNAL = "client", "reserve", "internal"
#: Why a request or connection was refused: over ``--max-connections``; a client's request
#: on a reserved slot; headers not complete in time; a body slower than the minimum rate;
#: a body that would pass ``--max-inflight-bytes``; over ``--max-requests-in-progress``.
REFUSALS = ("connections", "reserve", "slow_headers", "slow_body", "inflight_bytes", "overload")


#: File descriptors kept for what is not a connection to the API: storage, logs, the
#: gossip socket, listening ports, connections to other nodes.
FD_HEADROOM = 128
#: The reserve is a sixteenth of the client connections, and never fewer than this.
MIN_RESERVE = 64


def connection_limits(fd_limit: int, clients: Optional[int] = None) -> tuple[int, int]:
    """Client connections and the reserve for calls between nodes, for a process that may
    open ``fd_limit`` files; ``clients`` as given, else what fits beside the reserve."""
    if clients is None:
        clients = max(1, (fd_limit - FD_HEADROOM) * 16 // 17)
    return clients, max(MIN_RESERVE, clients // 16)


class Slots:
    """Connections held: at most ``clients`` of clients, and up to ``reserve`` more that
    only calls between nodes may keep."""

    def __init__(self, clients: int, reserve: int) -> None:
        self.limit = clients
        self.reserve = reserve
        self.held = {CLIENT: 0, RESERVE: 0, INTERNAL: 0}

    def open(self) -> Optional[str]:
        """The kind of slot a new connection takes, or None: refused."""
        if self.held[CLIENT] < self.limit:
            kind = CLIENT
        elif self._reserve_left():
            kind = RESERVE
        else:
            return None
        self.held[kind] += 1
        return kind

    def upgrade(self, kind: str) -> str:
        """The kind a connection of ``kind`` holds once it carries calls between nodes: a
        slot of the reserve if one is left, freeing its client slot."""
        if kind == RESERVE or (kind == CLIENT and self._reserve_left()):
            self.held[kind] -= 1
            self.held[INTERNAL] += 1
            return INTERNAL
        return kind

    def close(self, kind: str) -> None:
        self.held[kind] -= 1

    def _reserve_left(self) -> bool:
        return self.held[RESERVE] + self.held[INTERNAL] < self.reserve


class Budget:
    """Bytes that may be held at once; a request takes its share before it is read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size


class Tally:
    """Refusals counted by reason since start, and those not yet logged; a summary is due
    at most once every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.counts = dict.fromkeys(REFUSALS, 0)
        self.unlogged: dict[str, int] = {}
        self._logged_at = float("-inf")

    def count(self, reason: str, now: float) -> bool:
        """Counts a refusal; whether a summary is due now."""
        self.counts[reason] += 1
        self.unlogged[reason] = self.unlogged.get(reason, 0) + 1
        return now - self._logged_at >= self.interval

    def next_summary(self) -> float:
        """When the next summary may be logged."""
        return self._logged_at + self.interval

    def summary(self, now: float) -> dict[str, int]:
        """The refusals since the last summary, which is now."""
        unlogged, self.unlogged = self.unlogged, {}
        self._logged_at = now
        return unlogged
