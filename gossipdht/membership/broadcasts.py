"""The dissemination queue: updates waiting to ride on outgoing datagrams.

Each member has at most one pending update (a newer one replaces it).  Updates sent
the fewest times go first, and each is dropped after ``limit`` transmissions, which
the caller sets to ``mult * ceil(log10(N + 1))`` as memberlist does.  An update is
packed when first sent, so one replaced before that costs nothing.
"""

from __future__ import annotations

import itertools

from gossipdht.membership.wire import Message, pack_message


class BroadcastQueue:
    """Membership updates waiting to be piggybacked, the least retransmitted first, one per member."""

    def __init__(self) -> None:
        self._items: dict[str, list] = {}  # member name -> [transmits, -order, message, packed]
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, name: str, message: Message) -> None:
        self._items[name] = [0, -next(self._order), message, None]

    def clear(self) -> None:
        self._items.clear()

    def take(self, budget: int, limit: int) -> list[bytes]:
        """Packed updates fitting in ``budget`` bytes; each counts as sent once more."""
        chosen: list[bytes] = []
        if not self._items:
            return chosen
        for name, item in sorted(self._items.items(), key=lambda entry: entry[1][:2]):
            if item[3] is None:
                item[3] = pack_message(item[2])
            size = len(item[3])
            if size > budget:
                continue
            budget -= size
            chosen.append(item[3])
            item[0] += 1
            if item[0] >= limit:
                del self._items[name]
        return chosen
