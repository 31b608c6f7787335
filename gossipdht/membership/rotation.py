"""Members visited in turn: round-robin over a shuffled list, reshuffled on each pass.

SWIM's bound on how long a member waits for its turn (to be probed, or to be gossiped
to): at most two passes, unlike a random pick, which can miss one for many rounds.
"""

from __future__ import annotations

import random
from typing import Callable, Iterable, Optional


class Rotation:
    """A shuffled round-robin over names; the caller says which names exist and which are wanted now."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._order: list[str] = []
        self._index = 0

    def next(self, names: Callable[[], Iterable[str]], wanted: Callable[[str], bool]) -> Optional[str]:
        """The next wanted name of this pass; at the end of a pass ``names()`` are
        shuffled into the next one.  None when no name is wanted in a whole pass."""
        for _ in range(2):
            while self._index < len(self._order):
                name = self._order[self._index]
                self._index += 1
                if wanted(name):
                    return name
            self._order = list(names())
            self._rng.shuffle(self._order)
            self._index = 0
        return None

    def insert(self, name: str) -> None:
        """A newcomer goes to a random place among those not visited yet in this pass."""
        order = self._order
        order.append(name)
        position = self._rng.randint(self._index, len(order) - 1)
        order[position], order[-1] = order[-1], order[position]
