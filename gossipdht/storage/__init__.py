"""Storage engines behind one small interface.

An engine keeps one record per key, tombstones included, and resolves concurrent
writes itself: a write only replaces a record with an older version (last writer
wins), so replicas can apply the same writes in any order and agree.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Optional, Protocol

from gossipdht.hlc import Version


class Record(NamedTuple):
    """A stored value, or a tombstone (``deleted``) that remembers a deletion."""

    version: Version
    value: bytes
    content_type: str
    deleted: bool = False


class Store(Protocol):
    def get(self, key: str) -> Optional[Record]:
        """The record for ``key``, tombstones included; None if never written."""

    def write(self, items: Iterable[tuple[str, Record]]) -> None:
        """Apply the writes as one durable batch, keeping the newest version of each key."""

    def keys(self, after: Optional[str], limit: int) -> list[str]:
        """Up to ``limit`` live keys in code-point order, starting after ``after``."""

    def max_timestamp(self) -> int:
        """The largest version timestamp ever written here (0 when empty)."""

    def close(self) -> None:
        """Release the engine's resources."""


ENGINES = ("sqlite", "memory")


def open_store(engine: str, directory: str) -> Store:
    """Open the named engine; ``directory`` holds the files of durable engines."""
    if engine == "memory":
        from gossipdht.storage.memory import MemoryStore

        return MemoryStore()
    if engine == "sqlite":
        import os

        from gossipdht.storage.sqlite import SQLiteStore

        os.makedirs(directory, exist_ok=True)
        return SQLiteStore(os.path.join(directory, "records.sqlite3"))
    raise ValueError(f"unknown storage engine {engine!r}")
