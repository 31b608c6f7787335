"""Each row measured alone: while one system is driven, every other system of the run is
paused (``SIGSTOP`` to each of its processes) and resumed (``SIGCONT``) after, so that no
row pays for another system's background work (anti-entropy rounds, write-ahead-log
copies, gossip, etcd's heartbeats).

A system's processes are paused and resumed together: the members of a cluster (or of
etcd) see no time pass for one another, and none suspects another when they resume.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator


@dataclass(frozen=True)
class System:
    """Processes measured as one (a cluster's nodes, etcd's members, a reference server),
    and ``settle``: wait until they answer again after a pause (raises when they do not)."""

    name: str
    pids: tuple[int, ...]
    settle: Callable[[], None]


@contextmanager
def paused(systems: Iterable[System], kill: Callable[[int, int], None] = os.kill) -> Iterator[None]:
    """Every process of ``systems`` stopped for the block and resumed after, however the
    block ends (an error, Ctrl-C, ``SIGTERM`` turned into ``SystemExit``)."""
    stopped: list[int] = []
    try:
        for system in systems:
            for pid in system.pids:
                stopped.append(pid)  # first: resuming a process never stopped does no harm
                _signal(kill, pid, signal.SIGSTOP)
        yield
    finally:
        for pid in stopped:
            _signal(kill, pid, signal.SIGCONT)


def _signal(kill: Callable[[int, int], None], pid: int, signum: int) -> None:
    try:
        kill(pid, signum)
    except ProcessLookupError:  # exited: its system's rows will say so
        pass


@contextmanager
def alone(system: System, systems: Iterable[System], kill: Callable[[int, int], None] = os.kill) -> Iterator[None]:
    """The block runs while every one of ``systems`` but ``system`` is paused, once
    ``system`` (resumed after the row before, if it was paused then) has settled."""
    with paused([other for other in systems if other.name != system.name], kill):
        system.settle()
        yield
