"""Messages between nodes' internal APIs: records, keys and ring ranges in msgpack.

Every decoder checks each field, so a malformed body raises ``BadMessage`` (a 400)
and nothing of it is applied.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import msgpack

from gossipdht.core.hashing import RING_SIZE
from gossipdht.core.hlc import TIMESTAMP_LIMIT, Version
from gossipdht.storage import Record, TokenRange, Write


class BadMessage(ValueError):
    """A body that is not a well-formed internal message."""


def _unpack(body: bytes) -> Any:
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as e:  # msgpack raises several unrelated types
        raise BadMessage(f"not msgpack: {e}") from None


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise BadMessage(f"{what} is not a list")
    return value


def _record_fields(item: Any) -> tuple[str, Record]:
    if not (isinstance(item, list) and len(item) >= 6):
        raise BadMessage("a record is not a list of 6 fields")
    key, timestamp, node, deleted, content_type, value = item[:6]
    if not (isinstance(key, str) and isinstance(timestamp, int) and 0 <= timestamp < TIMESTAMP_LIMIT
            and isinstance(node, str) and isinstance(deleted, bool) and isinstance(content_type, str)
            and isinstance(value, bytes)):
        raise BadMessage("a record field has the wrong type")
    return key, Record(Version(timestamp, node), value, content_type, deleted)


def _record_list(key: str, r: Record) -> list:
    return [key, r.version.timestamp, r.version.node, r.deleted, r.content_type, r.value]


def pack_writes(writes: Sequence[Write]) -> bytes:
    return msgpack.packb([_record_list(key, r) + [hint] for key, r, hint in writes], use_bin_type=True)


def unpack_writes(body: bytes) -> list[Write]:
    writes = []
    for item in _list(_unpack(body), "the body"):
        key, record = _record_fields(item)
        hint = item[6] if len(item) == 7 else None
        if hint is not None and not isinstance(hint, str):
            raise BadMessage("a hint target is not a string")
        writes.append((key, record, hint))
    return writes


def pack_keys(keys: Sequence[str]) -> bytes:
    return msgpack.packb(list(keys), use_bin_type=True)


def unpack_keys(body: bytes) -> list[str]:
    keys = _list(_unpack(body), "the body")
    if not all(isinstance(key, str) for key in keys):
        raise BadMessage("a key is not a string")
    return keys


def pack_records(records: Sequence[Optional[tuple[str, Record]]]) -> bytes:
    """Records answering a read: None where the key is unknown."""
    return msgpack.packb([None if r is None else _record_list(*r) for r in records], use_bin_type=True)


def unpack_records(body: bytes) -> list[Optional[tuple[str, Record]]]:
    return [None if item is None else _record_fields(item) for item in _list(_unpack(body), "the body")]


def pack_scan(ranges: Sequence[TokenRange], before: Optional[int]) -> bytes:
    """What a digest or version scan covers, as ``[before, [[low, last], ...]]``: ranges
    with ``last = high - 1`` (2**64 does not fit msgpack's integers), and the timestamp
    the records must be below, nil for all of them."""
    return msgpack.packb([before, [[low, high - 1] for low, high in ranges]], use_bin_type=True)


def unpack_scan(body: bytes) -> tuple[list[TokenRange], Optional[int]]:
    message = _unpack(body)
    if not (isinstance(message, list) and len(message) == 2
            and (message[0] is None or isinstance(message[0], int) and 0 <= message[0] <= TIMESTAMP_LIMIT)):
        raise BadMessage("a scan is not [before, ranges] with before nil or a timestamp")
    ranges = []
    for item in _list(message[1], "the ranges"):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, int) for x in item)
                and 0 <= item[0] <= item[1] < RING_SIZE):
            raise BadMessage("a range is not [low, last] with 0 <= low <= last < 2**64")
        ranges.append((item[0], item[1] + 1))
    return ranges, message[0]


def pack_digests(digests: Sequence[tuple[int, int]]) -> bytes:
    return msgpack.packb([list(d) for d in digests])


def unpack_digests(body: bytes, expected: int) -> list[tuple[int, int]]:
    items = _list(_unpack(body), "the body")
    if len(items) != expected or not all(
        isinstance(d, list) and len(d) == 2 and all(isinstance(x, int) and x >= 0 for x in d) for d in items
    ):
        raise BadMessage(f"expected {expected} digests of [count, sum]")
    return [(d[0], d[1]) for d in items]


def pack_versions(versions: Sequence[tuple[str, Version]]) -> bytes:
    return msgpack.packb([[key, v.timestamp, v.node] for key, v in versions], use_bin_type=True)


def unpack_versions(body: bytes) -> list[tuple[str, Version]]:
    versions = []
    for item in _list(_unpack(body), "the body"):
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and isinstance(item[1], int) and isinstance(item[2], str)):
            raise BadMessage("a version is not [key, timestamp, node]")
        versions.append((item[0], Version(item[1], item[2])))
    return versions
