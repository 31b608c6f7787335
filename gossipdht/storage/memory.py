"""A storage engine in dicts: fast, and gone when the process ends."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import islice
from typing import Iterable, Optional, Sequence

from gossipdht.core.hashing import digest
from gossipdht.core.hlc import Version
from gossipdht.storage import Record, TokenRange, ring_order


class MemoryStore:
    """Records in dictionaries: fast, lost on restart."""

    #: Everything runs on the caller's thread: the dictionaries are not shared.
    threaded = False

    def __init__(self) -> None:
        self._records: dict[str, Record] = {}
        self._hints: dict[str, dict[str, Record]] = {}
        self._by_token: Optional[list[tuple[int, str]]] = None  # every key in ring order, built when asked
        self._max_timestamp = 0
        self._reserved_timestamp = 0

    def get(self, key: str) -> Optional[Record]:
        return self._records.get(key)

    def get_many(self, keys: Sequence[str]) -> list[Optional[Record]]:
        return [self._records.get(key) for key in keys]

    def write(self, items: Iterable[tuple[str, Record]], wait: bool = True) -> dict[str, Version]:
        newer: dict[str, Version] = {}
        for key, record in items:
            old = self._records.get(key)
            if old is None or record.version > old.version:
                if old is None:
                    self._by_token = None
                self._records[key] = record
                self._max_timestamp = max(self._max_timestamp, record.version.timestamp)
            elif old.version > record.version:
                newer[key] = old.version
        return newer

    def keys(self, after: Optional[str], limit: int) -> list[str]:
        ordered = self._ring_order()
        start = 0 if after is None else bisect_right(ordered, ring_order(after))
        live = (key for _, key in islice(ordered, start, None) if not self._records[key].deleted)
        return list(islice(live, limit))

    def _ring_order(self) -> list[tuple[int, str]]:
        if self._by_token is None:
            self._by_token = sorted(map(ring_order, self._records))
        return self._by_token

    def _in_range(self, token_range: TokenRange) -> list[str]:
        ordered = self._ring_order()
        low, high = token_range
        return [key for _, key in ordered[bisect_left(ordered, (low,)) : bisect_left(ordered, (high,))]]

    def digests(self, ranges: Sequence[TokenRange], before: Optional[int] = None) -> list[tuple[int, int]]:
        answer = []
        for token_range in ranges:
            versions = self.versions([token_range], before)
            answer.append((len(versions), sum(digest(key, v.timestamp, v.node) for key, v in versions)))
        return answer

    def versions(self, ranges: Sequence[TokenRange], before: Optional[int] = None) -> list[tuple[str, Version]]:
        found = [(key, self._records[key].version) for r in ranges for key in self._in_range(r)]
        return found if before is None else [(key, v) for key, v in found if v.timestamp < before]

    def remove(self, items: Iterable[tuple[str, Version]]) -> int:
        removed = 0
        for key, version in items:
            record = self._records.get(key)
            if record is not None and record.version == version:
                del self._records[key]
                removed += 1
        if removed:
            self._by_token = None
        return removed

    def purge_tombstones(self, before: int) -> int:
        return self.remove([(key, r.version) for key, r in self._records.items()
                            if r.deleted and r.version.timestamp < before])

    def counts(self) -> tuple[int, int]:
        tombstones = sum(1 for r in self._records.values() if r.deleted)
        return len(self._records) - tombstones, tombstones

    def max_timestamp(self) -> int:
        return self._max_timestamp

    def reserved_timestamp(self) -> int:
        return self._reserved_timestamp

    def reserve_timestamp(self, timestamp: int) -> None:
        self._reserved_timestamp = max(self._reserved_timestamp, timestamp)

    def add_hints(self, target: str, items: Iterable[tuple[str, Record]]) -> None:
        kept = self._hints.setdefault(target, {})
        for key, record in items:
            old = kept.get(key)
            if old is None or record.version > old.version:
                kept[key] = record

    def hints(self, target: str, limit: int) -> list[tuple[str, Record]]:
        return list(self._hints.get(target, {}).items())[:limit]

    def remove_hints(self, target: str, items: Iterable[tuple[str, Version]]) -> None:
        kept = self._hints.get(target, {})
        for key, version in items:
            if key in kept and kept[key].version == version:
                del kept[key]
        if not kept:
            self._hints.pop(target, None)

    def hint_counts(self) -> dict[str, int]:
        return {target: len(kept) for target, kept in self._hints.items() if kept}

    def checkpoint(self) -> None:
        """Nothing is written to disk."""

    def close(self) -> None:
        self._records.clear()
        self._hints.clear()
        self._by_token = None
