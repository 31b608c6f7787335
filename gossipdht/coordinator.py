"""The coordinator answers the public API's reads and writes.

On a single node it versions writes with the hybrid logical clock and keeps them in
the local store.  It is the seam where replication plugs in: callers only see
Deferreds, so quorum reads and writes can take its place without touching the API.
"""

from __future__ import annotations

from typing import Optional

from twisted.internet.defer import Deferred, succeed

from gossipdht.committer import GroupCommitter
from gossipdht.hlc import HybridLogicalClock, Version
from gossipdht.storage import Record, Store

TOMBSTONE_CONTENT_TYPE = ""


class Coordinator:
    def __init__(self, name: str, store: Store, committer: GroupCommitter, clock: HybridLogicalClock) -> None:
        self.name = name
        self._store = store
        self._committer = committer
        self._clock = clock
        clock.observe(store.max_timestamp())

    def get(self, key: str) -> Deferred[Optional[Record]]:
        """The live record for ``key``, or None when it is missing or deleted."""
        record = self._store.get(key)
        return succeed(None if record is None or record.deleted else record)

    def put(self, key: str, value: bytes, content_type: str) -> Deferred[Record]:
        record = Record(self._next_version(), value, content_type)
        return self._committer.write(key, record).addCallback(lambda _: record)

    def delete(self, key: str) -> Deferred[Record]:
        """Write a tombstone, so that replicas and repairs learn of the deletion."""
        record = Record(self._next_version(), b"", TOMBSTONE_CONTENT_TYPE, deleted=True)
        return self._committer.write(key, record).addCallback(lambda _: record)

    def keys(self, after: Optional[str], limit: int) -> list[str]:
        """A page of the keys this node answers for, in order."""
        return self._store.keys(after, limit)

    def _next_version(self) -> Version:
        return Version(self._clock.now(), self.name)
