"""Calls between nodes are idempotent: one that failed on a connection the peer had
already closed (a pooled or kept-open one) is made once more, on a new connection."""

from __future__ import annotations

from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")


async def once_more(call: Callable[[], Awaitable[T]], stale: Callable[[Exception], bool]) -> T:
    """``call()``; made again, once, when it fails with an error that ``stale`` says
    came from a connection lost before the answer."""
    try:
        return await call()
    except Exception as e:
        if not stale(e):
            raise
    return await call()
