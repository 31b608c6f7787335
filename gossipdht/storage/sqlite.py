"""The durable engine: one SQLite database in WAL mode.

``write`` commits before it returns, so a write that was acknowledged survives a
``kill -9``.  ``synchronous=NORMAL`` makes WAL commits durable against a process
crash; a power loss may drop the last transactions, as with Cassandra's periodic
commit log.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable, Optional

from gossipdht.hlc import Version
from gossipdht.storage import Record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    timestamp INTEGER NOT NULL,
    node TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# Last writer wins inside the database: an existing row is only replaced by a newer version.
_UPSERT = """
INSERT INTO records (key, timestamp, node, deleted, content_type, value)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    timestamp = excluded.timestamp, node = excluded.node, deleted = excluded.deleted,
    content_type = excluded.content_type, value = excluded.value
WHERE (excluded.timestamp, excluded.node) > (records.timestamp, records.node)
"""

_RAISE_MAX = """
INSERT INTO meta (name, value) VALUES ('max_timestamp', ?)
ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)
"""


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def get(self, key: str) -> Optional[Record]:
        row = self._db.execute(
            "SELECT timestamp, node, deleted, content_type, value FROM records WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        timestamp, node, deleted, content_type, value = row
        return Record(Version(timestamp, node), value, content_type, bool(deleted))

    def write(self, items: Iterable[tuple[str, Record]]) -> None:
        rows = [
            (key, r.version.timestamp, r.version.node, int(r.deleted), r.content_type, r.value)
            for key, r in items
        ]
        if not rows:
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(_UPSERT, rows)
            self._db.execute(_RAISE_MAX, (max(row[1] for row in rows),))

    def keys(self, after: Optional[str], limit: int) -> list[str]:
        if after is None:
            query = "SELECT key FROM records WHERE NOT deleted ORDER BY key LIMIT ?"
            args: tuple = (limit,)
        else:
            query = "SELECT key FROM records WHERE key > ? AND NOT deleted ORDER BY key LIMIT ?"
            args = (after, limit)
        return [key for (key,) in self._db.execute(query, args)]

    def max_timestamp(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'max_timestamp'").fetchone()
        return 0 if row is None else row[0]

    def close(self) -> None:
        self._db.close()
