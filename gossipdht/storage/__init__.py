"""Storage engines behind one small interface.

An engine keeps one record per key, tombstones included, and resolves concurrent
writes itself: a write only replaces a record with an older version (last writer
wins), so replicas can apply the same writes in any order and agree.

Each record also sits at its key's ring token (``hashing.token``), so an engine can
answer for a range of the ring: the keys and versions in it, and a digest (count and
sum of per-version hashes) that two replicas compare without sending the keys.  Hints
are records kept for another node until it can take them (hinted handoff).
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Optional, Protocol, Sequence

from gossipdht.core.hashing import token
from gossipdht.core.hlc import Version

#: ``[low, high)`` on the 64-bit ring.
TokenRange = tuple[int, int]


def ring_order(key: str) -> tuple[int, str]:
    """The sort key of listings: by token, then by code point."""
    return token(key), key


class Record(NamedTuple):
    """A stored value, or a tombstone (``deleted``) that remembers a deletion."""

    version: Version
    value: bytes
    content_type: str
    deleted: bool = False


class StoreBusy(Exception):
    """A write that was not to wait found another write transaction in progress."""


#: A record sent to a replica, with the name of the node it is kept for when it is a hint.
Write = tuple[str, Record, Optional[str]]


class Store(Protocol):
    """What a storage engine offers: records by key and by ring range, digests, hints."""

    #: Whether writes and the scans (``get_many``, ``digests``, ``versions``) may run
    #: in other threads than the reads, one call at a time each.
    threaded: bool

    def get(self, key: str) -> Optional[Record]:
        """The record for ``key``, tombstones included; None if never written."""

    def get_many(self, keys: Sequence[str]) -> list[Optional[Record]]:
        """``get`` for each key, in order."""

    def write(self, items: Iterable[tuple[str, Record]], wait: bool = True) -> dict[str, Version]:
        """Apply the writes as one durable batch, keeping the newest version of each key;
        for each key where a newer version than one written was kept, that version.
        With ``wait`` false, raise ``StoreBusy`` rather than wait for a write in progress
        in another thread."""

    def keys(self, after: Optional[str], limit: int) -> list[str]:
        """Up to ``limit`` live keys in ``ring_order``, starting after ``after``: the
        order the records are stored in, as Cassandra lists them."""

    def digests(self, ranges: Sequence[TokenRange], before: Optional[int] = None) -> list[tuple[int, int]]:
        """(count, sum of version digests) of the records in each range, tombstones included;
        only those with a timestamp below ``before`` when it is given."""

    def versions(self, ranges: Sequence[TokenRange], before: Optional[int] = None) -> list[tuple[str, Version]]:
        """Every record's key and version in the ranges, tombstones included; only those
        with a timestamp below ``before`` when it is given."""

    def remove(self, items: Iterable[tuple[str, Version]]) -> int:
        """Forget each key whose record still has exactly that version; how many went."""

    def purge_tombstones(self, before: int) -> int:
        """Forget the tombstones with a timestamp below ``before``; how many went."""

    def counts(self) -> tuple[int, int]:
        """(live records, tombstones)."""

    def max_timestamp(self) -> int:
        """The largest version timestamp ever written here (0 when empty)."""

    def reserved_timestamp(self) -> int:
        """The high-water mark the clock reserved, 0 if never."""

    def reserve_timestamp(self, timestamp: int) -> None:
        """Durably remember a high-water mark before the clock issues timestamps up to it;
        a lower one than the mark kept changes nothing."""

    def add_hints(self, target: str, items: Iterable[tuple[str, Record]]) -> None:
        """Keep records for ``target`` (newest version per key), durably."""

    def hints(self, target: str, limit: int) -> list[tuple[str, Record]]:
        """Up to ``limit`` of the records kept for ``target``."""

    def remove_hints(self, target: str, items: Iterable[tuple[str, Version]]) -> None:
        """Forget delivered hints, unless a newer one for the key replaced them."""

    def hint_counts(self) -> dict[str, int]:
        """How many hints are kept for each target."""

    def checkpoint(self) -> None:
        """Move written data from a log to its place on disk; blocking, for a thread."""

    def close(self) -> None:
        """Release the engine's resources."""


ENGINES = ("sqlite", "memory")
#: How durable a durable engine's commits are: ``normal`` survives a crash of the
#: process, ``full`` a power loss too (an fsync in every commit).
SYNC_MODES = ("normal", "full")


def open_store(engine: str, directory: str, sync: str = "normal") -> Store:
    """Open the named engine; ``directory`` holds the files of durable engines, which
    commit durably against a crash of the process (``sync="normal"``) or also against a
    power loss (``"full"``, see ``SYNC_MODES``)."""
    if engine == "memory":
        from gossipdht.storage.memory import MemoryStore

        return MemoryStore()
    if engine == "sqlite":
        import os

        from gossipdht.storage.sqlite import SQLiteStore

        os.makedirs(directory, exist_ok=True)
        return SQLiteStore(os.path.join(directory, "records.sqlite3"), sync)
    raise ValueError(f"unknown storage engine {engine!r}")
