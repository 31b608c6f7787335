"""The durable engine: one SQLite database in WAL mode.

``write`` commits before it returns, so a write that was acknowledged survives a
``kill -9``.  ``synchronous=NORMAL`` (sync ``normal``) makes WAL commits durable against
a process crash; a power loss may drop the last transactions, as with Cassandra's
periodic commit log.  ``synchronous=FULL`` (sync ``full``) syncs the WAL in every commit,
as Cassandra's batch commit log does: durable against a power loss too.  Tokens are
stored shifted by 2**63 to fit SQLite's signed integers.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from typing import Iterable, Iterator, Optional, Sequence

from gossipdht.core.hashing import digest, token
from gossipdht.core.hlc import TIMESTAMP_LIMIT, Version
from gossipdht.storage import SYNC_MODES, Record, StoreBusy, TokenRange
from gossipdht.storage.buckets import BUCKET_BITS, BucketDigests

_SHIFT = 1 << 63

# One B-tree holds the records, in ring order: a write touches one random page, where a
# table with a key index and a token index touched three; at 1,000,000 keys a row in
# commits of 16 cost 85 -> 57-67 microseconds, a read 19 -> 11-13.  Values come last, so
# that scans of digests and versions stop before them.  Values over ``INLINE_BYTES``
# live apart, appended to ``blobs``: in a table clustered by key SQLite keeps only a
# few long rows per page (with 4 KiB values, writes cost 2.7 and reads 2.6 times more).
_RECORDS = """
CREATE TABLE records (
    token INTEGER NOT NULL,
    key TEXT NOT NULL,
    digest INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    node TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    value BLOB,
    blob INTEGER,
    PRIMARY KEY (token, key)
) WITHOUT ROWID;
CREATE TABLE blobs (id INTEGER PRIMARY KEY, value BLOB NOT NULL);
CREATE TRIGGER blob_replaced AFTER UPDATE OF blob ON records
WHEN old.blob IS NOT NULL AND old.blob IS NOT new.blob BEGIN DELETE FROM blobs WHERE id = old.blob; END;
CREATE TRIGGER blob_removed AFTER DELETE ON records
WHEN old.blob IS NOT NULL BEGIN DELETE FROM blobs WHERE id = old.blob; END;
"""
INLINE_BYTES = 256
_TOMBSTONES = "CREATE INDEX IF NOT EXISTS tombstones ON records (timestamp) WHERE deleted"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hints (
    target TEXT NOT NULL,
    key TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    node TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (target, key)
);
"""
#: ``PRAGMA user_version`` of a database with ``_RECORDS``.
SCHEMA_VERSION = 2

# Last writer wins inside the database: an existing row is only replaced by a newer version.
_UPSERT = """
INSERT INTO records (token, key, digest, timestamp, node, deleted, content_type, value, blob)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (token, key) DO UPDATE SET
    timestamp = excluded.timestamp, node = excluded.node, deleted = excluded.deleted,
    content_type = excluded.content_type, value = excluded.value, blob = excluded.blob,
    digest = excluded.digest
WHERE (excluded.timestamp, excluded.node) > (records.timestamp, records.node)
"""

_UPSERT_HINT = """
INSERT INTO hints (target, key, timestamp, node, deleted, content_type, value)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (target, key) DO UPDATE SET
    timestamp = excluded.timestamp, node = excluded.node, deleted = excluded.deleted,
    content_type = excluded.content_type, value = excluded.value
WHERE (excluded.timestamp, excluded.node) > (hints.timestamp, hints.node)
"""

# Raises a value of ``meta``, never lowers it.
_RAISE_META = """
INSERT INTO meta (name, value) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)
"""


def _bucket(stored_token: str) -> str:
    """SQL for the bucket of a stored token (SQLite's >> keeps the sign)."""
    return f"(({stored_token} >> {64 - BUCKET_BITS}) + {1 << (BUCKET_BITS - 1)})"


_BUCKET_TOTALS = f"SELECT {_bucket('token')}, count(*), sum(digest) FROM records GROUP BY 1"
# Temporary triggers live with the writer's connection, the only one that writes records.
_BUCKET_TRIGGERS = f"""
CREATE TEMP TRIGGER bucket_insert AFTER INSERT ON main.records
BEGIN SELECT bucket_change({_bucket('new.token')}, 1, new.digest); END;
CREATE TEMP TRIGGER bucket_update AFTER UPDATE OF digest ON main.records
BEGIN SELECT bucket_change({_bucket('new.token')}, 0, new.digest - old.digest); END;
CREATE TEMP TRIGGER bucket_delete AFTER DELETE ON main.records
BEGIN SELECT bucket_change({_bucket('old.token')}, -1, -old.digest); END;
"""

_IN_RANGE_BEFORE = "FROM records WHERE token BETWEEN ? AND ? AND timestamp < ?"
_DIGESTS = f"SELECT count(*), coalesce(sum(digest), 0) {_IN_RANGE_BEFORE}"
_VERSIONS = f"SELECT key, timestamp, node {_IN_RANGE_BEFORE}"
_ONE_KEY = "FROM records WHERE token = ? AND key = ?"
_BY_KEY = f"""
SELECT timestamp, node, deleted, content_type,
       CASE WHEN blob IS NULL THEN value ELSE (SELECT value FROM blobs WHERE id = records.blob) END
{_ONE_KEY}"""
_STORED_VERSION = f"SELECT timestamp, node {_ONE_KEY}"
#: The writer's page cache.  A commit that adds pages to the table (new keys split
#: B-tree pages) costs SQLite 3.40 time in proportion to the pages cached, at the end of
#: the transaction: at 1,000,000 keys in commits of 16 new keys, a row cost 71-83
#: microseconds with 64 MiB, 45 with 16 MiB, 33 with 2 MiB.  Commits of hundreds of rows
#: (bulk loads) gain from the cache instead: on 3 nodes holding 300,000 keys each,
#: ``gossipdht load`` used 1.33 times the CPU a key of 64 MiB's with 2 MiB, 1.09 with 16.
WRITER_CACHE_KIB = 16384
#: About 16 MB of WAL (pages of 4 KiB) before the writer finishes a checkpoint itself.
WAL_FINISH_FRAMES = 4096


def _stored_token(key: str) -> int:
    """The key's token as stored, shifted into SQLite's signed integers."""
    return token(key) - _SHIFT


def _scan_bounds(token_range: TokenRange, before: Optional[int]) -> tuple[int, int, int]:
    """The parameters of ``_DIGESTS`` and ``_VERSIONS``: stored tokens and the timestamp bound."""
    low, high = token_range
    return low - _SHIFT, high - 1 - _SHIFT, TIMESTAMP_LIMIT if before is None else before


def _row(key: str, record: Record, blob: Optional[int] = None) -> tuple:
    """The columns of ``_UPSERT``: the value itself, or where it is in ``blobs``."""
    timestamp, node = record.version
    return (_stored_token(key), key, digest(key, timestamp, node), timestamp, node, int(record.deleted),
            record.content_type, None if blob is not None else record.value, blob)


def _record(row) -> Record:
    timestamp, node, deleted, content_type, value = row
    return Record(Version(timestamp, node), value, content_type, bool(deleted))


class SQLiteStore:
    """Connections to one database: ``_db`` reads on the caller's (the reactor's) thread;
    ``_writer`` writes, from whichever thread commits (large batches come from a thread,
    see ``threaded``); ``_scanner`` reads the long scans of anti-entropy in a thread.  In
    WAL mode readers and the one writer do not block each other.

    Checkpoints (copying the WAL into the database) are not left to the commits: that
    cost a commit 11-60 ms now and then.  ``checkpoint``, run in a thread, copies what
    the WAL holds without blocking the writer; since under a steady load it never catches
    up, the writer finishes the job itself after a commit once the WAL passed
    ``WAL_FINISH_FRAMES``: what is left then is small.  Measured on 200,000 random keys:
    commits of 16 rows 76 -> 42 microseconds a row on the writer's thread (p99 16 ->
    1.6 ms), of 1,000 rows 37 -> 23."""

    #: Writes and scans may run in other threads than reads (each uses its own connection).
    threaded = True

    def __init__(self, path: str, sync: str = "normal") -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync {sync!r} is not one of {', '.join(SYNC_MODES)}")
        # A setting of each connection; it governs the writer's commits and the checkpoints.
        self._synchronous = sync.upper()
        self._writer = self._connect(path)
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._writing = threading.Lock()
        self._checkpointer = self._connect(path)
        self._wal_frames = 0
        self._db = self._connect(path)
        self._db.execute("PRAGMA cache_size=-65536")
        self._scanner = self._connect(path)
        self._scanner.execute("PRAGMA cache_size=-16384")
        self._scanning = threading.Lock()
        self._writer.executescript(_SCHEMA)
        self._buckets = BucketDigests()
        self._create_records()
        self._buckets.load(self._writer.execute(_BUCKET_TOTALS))
        self._writer.create_function("bucket_change", 3, self._buckets.stage)
        self._writer.executescript(_BUCKET_TRIGGERS)

    def _connect(self, path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        return db

    @contextmanager
    def _transaction(self, wait: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction at a time, whichever thread asks; ``StoreBusy`` at once
        instead of waiting for the one in progress when not ``wait``."""
        if not self._writing.acquire(blocking=wait):
            raise StoreBusy("a write transaction is in progress")
        try:
            try:
                with self._writer:
                    self._writer.execute("BEGIN")
                    yield self._writer
            except BaseException:
                self._buckets.discard()
                raise
            self._buckets.apply()
            if self._wal_frames > WAL_FINISH_FRAMES:
                self._wal_frames = 0
                self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self._writing.release()

    def checkpoint(self) -> None:
        """Copy the WAL into the database as far as it goes without blocking the writer.
        Blocking: call it from a thread, one call at a time."""
        _, self._wal_frames, _ = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def _create_records(self) -> None:
        """The records table and its indexes; a database of another layout is refused."""
        layout = self._writer.execute("PRAGMA user_version").fetchone()[0]
        if layout == SCHEMA_VERSION:
            return
        if layout or self._writer.execute("SELECT 1 FROM sqlite_master WHERE name = 'records'").fetchone():
            raise ValueError(f"its database has layout {layout}; this gossipdht reads layout {SCHEMA_VERSION}")
        with self._transaction() as db:
            for statement in filter(str.strip, _RECORDS.split(";\n")):
                db.execute(statement)
            db.execute(_TOMBSTONES)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def get(self, key: str) -> Optional[Record]:
        row = self._db.execute(_BY_KEY, (_stored_token(key), key)).fetchone()
        return None if row is None else _record(row)

    def get_many(self, keys: Sequence[str]) -> list[Optional[Record]]:
        with self._scanning:
            rows = [self._scanner.execute(_BY_KEY, (_stored_token(key), key)).fetchone() for key in keys]
        return [None if row is None else _record(row) for row in rows]

    def write(self, items: Iterable[tuple[str, Record]], wait: bool = True) -> dict[str, Version]:
        items = list(items)
        if not items:
            return {}
        with self._transaction(wait) as db:
            newer = self._store(db, items)
            db.execute(_RAISE_META, ("max_timestamp", max(r.version.timestamp for _, r in items)))
        return newer

    @staticmethod
    def _store(db: sqlite3.Connection, items: list[tuple[str, Record]]) -> dict[str, Version]:
        """Upsert the records, in the open transaction of ``db``; the newer stored
        versions that refused some.  A large value goes to ``blobs`` first, but only when
        its record is newer than the stored one: the upsert would refuse it and leave the
        blob behind."""
        inline = [(key, r) for key, r in items if len(r.value) <= INLINE_BYTES]
        newer: dict[str, Version] = {}
        # Each row the upsert inserted or replaced counts once: the common case, all of
        # them, costs no read.
        if db.executemany(_UPSERT, [_row(key, r) for key, r in inline]).rowcount < len(inline):
            for key, record in inline:
                stored = Version(*db.execute(_STORED_VERSION, (_stored_token(key), key)).fetchone())
                if stored > record.version:
                    newer[key] = stored
        for key, record in items:
            if len(record.value) > INLINE_BYTES:
                row = db.execute(_STORED_VERSION, (_stored_token(key), key)).fetchone()
                stored = None if row is None else Version(*row)
                if stored is None or record.version > stored:
                    blob = db.execute("INSERT INTO blobs (value) VALUES (?)", (record.value,)).lastrowid
                    db.execute(_UPSERT, _row(key, record, blob))
                elif stored > record.version:
                    newer[key] = stored
        return newer

    def keys(self, after: Optional[str], limit: int) -> list[str]:
        if after is None:
            query = "SELECT key FROM records WHERE NOT deleted ORDER BY token, key LIMIT ?"
            args: tuple = (limit,)
        else:
            query = "SELECT key FROM records WHERE (token, key) > (?, ?) AND NOT deleted ORDER BY token, key LIMIT ?"
            args = (_stored_token(after), after, limit)
        return [key for (key,) in self._db.execute(query, args)]

    def digests(self, ranges: Sequence[TokenRange], before: Optional[int] = None) -> list[tuple[int, int]]:
        """Without ``before``, from the bucket sums and the partial buckets at the ends."""
        with self._scanning:
            return [self._digest(r, before) for r in ranges]

    def _digest(self, token_range: TokenRange, before: Optional[int]) -> tuple[int, int]:
        split = None if before is not None else self._buckets.split(*token_range)
        if split is None:
            return tuple(self._scanner.execute(_DIGESTS, _scan_bounds(token_range, before)).fetchone())
        (count, total), ends = split
        for end in ends:
            more, added = self._scanner.execute(_DIGESTS, _scan_bounds(end, None)).fetchone()
            count, total = count + more, total + added
        return count, total

    def versions(self, ranges: Sequence[TokenRange], before: Optional[int] = None) -> list[tuple[str, Version]]:
        with self._scanning:
            return [(key, Version(ts, node)) for r in ranges
                    for key, ts, node in self._scanner.execute(_VERSIONS, _scan_bounds(r, before))]

    def remove(self, items: Iterable[tuple[str, Version]]) -> int:
        with self._transaction() as db:
            cursor = db.executemany(
                "DELETE FROM records WHERE token = ? AND key = ? AND timestamp = ? AND node = ?",
                [(_stored_token(key), key, v.timestamp, v.node) for key, v in items],
            )
            return cursor.rowcount

    def purge_tombstones(self, before: int) -> int:
        with self._transaction() as db:
            return db.execute("DELETE FROM records WHERE deleted AND timestamp < ?", (before,)).rowcount

    def counts(self) -> tuple[int, int]:
        # The bucket sums hold the total: a count(*) scanned every record on the reactor
        # thread at each /dht/stats.  Tombstones are counted on their partial index.
        tombstones = self._db.execute("SELECT count(*) FROM records WHERE deleted").fetchone()[0]
        return self._buckets.total() - tombstones, tombstones

    def max_timestamp(self) -> int:
        return self._meta("max_timestamp")

    def reserved_timestamp(self) -> int:
        return self._meta("reserved_timestamp")

    def reserve_timestamp(self, timestamp: int) -> None:
        # Committed before it returns, like ``write``: with synchronous=NORMAL the mark
        # survives a crash of the process (kill -9), but a power loss or an OS crash may
        # drop it with the last transactions, until a checkpoint has synced the WAL.
        with self._transaction() as db:
            db.execute(_RAISE_META, ("reserved_timestamp", timestamp))

    def _meta(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else row[0]

    def add_hints(self, target: str, items: Iterable[tuple[str, Record]]) -> None:
        rows = [
            (target, key, r.version.timestamp, r.version.node, int(r.deleted), r.content_type, r.value)
            for key, r in items
        ]
        with self._transaction() as db:
            db.executemany(_UPSERT_HINT, rows)

    def hints(self, target: str, limit: int) -> list[tuple[str, Record]]:
        rows = self._db.execute(
            "SELECT key, timestamp, node, deleted, content_type, value FROM hints WHERE target = ? LIMIT ?",
            (target, limit),
        )
        return [(row[0], _record(row[1:])) for row in rows]

    def remove_hints(self, target: str, items: Iterable[tuple[str, Version]]) -> None:
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM hints WHERE target = ? AND key = ? AND timestamp = ? AND node = ?",
                [(target, key, v.timestamp, v.node) for key, v in items],
            )

    def hint_counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT target, count(*) FROM hints GROUP BY target"))

    def close(self) -> None:
        self._db.close()
        self._checkpointer.close()
        with self._writing:
            self._writer.close()
        with self._scanning:
            self._scanner.close()
