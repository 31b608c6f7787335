"""A storage engine in a dict: fast, and gone when the process ends."""

from __future__ import annotations

from bisect import bisect_right
from typing import Iterable, Optional

from gossipdht.storage import Record


class MemoryStore:
    def __init__(self) -> None:
        self._records: dict[str, Record] = {}
        self._sorted: Optional[list[str]] = None
        self._max_timestamp = 0

    def get(self, key: str) -> Optional[Record]:
        return self._records.get(key)

    def write(self, items: Iterable[tuple[str, Record]]) -> None:
        for key, record in items:
            old = self._records.get(key)
            if old is None or record.version > old.version:
                if old is None or old.deleted != record.deleted:
                    self._sorted = None
                self._records[key] = record
                self._max_timestamp = max(self._max_timestamp, record.version.timestamp)

    def keys(self, after: Optional[str], limit: int) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(k for k, r in self._records.items() if not r.deleted)
        start = 0 if after is None else bisect_right(self._sorted, after)
        return self._sorted[start : start + limit]

    def max_timestamp(self) -> int:
        return self._max_timestamp

    def close(self) -> None:
        self._records.clear()
        self._sorted = None
