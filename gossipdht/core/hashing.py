"""Stable hashes of keys (pure): where a key sits on the ring, and a digest of a record's
version for the anti-entropy hash trees.  Never Python's salted ``hash()``: every node
must compute the same values."""

from __future__ import annotations

import hashlib

RING_SIZE = 1 << 64


def token(text: str) -> int:
    """A position on the 64-bit ring."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def digest(key: str, timestamp: int, node: str) -> int:
    """32 bits naming one version of one key; range digests add them up."""
    data = b"%s\x00%d\x00%s" % (key.encode(), timestamp, node.encode())
    return int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "big")
