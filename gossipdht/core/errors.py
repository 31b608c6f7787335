"""The error of asking another node, shared by every layer that asks one."""

from __future__ import annotations

from typing import Optional


class PeerError(Exception):
    """A peer could not be asked; ``timed_out`` tells a slow peer from a refusal."""

    def __init__(self, message: str, timed_out: bool = False, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.status = status


class Refusal(Exception):
    """A request refused on purpose; ``code`` is the HTTP status that says why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
