"""Keys as they arrive in a URL: strict percent-decoding and the rules a key obeys."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

MAX_KEY_BYTES = 1024

_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class InvalidKey(ValueError):
    """The key cannot be used; the message says why, in one line."""


def decode_path_segment(raw: bytes) -> str:
    """Percent-decode ``raw`` (the path after ``/db/``) into a key.

    Unlike ``urllib.parse.unquote`` this refuses malformed escapes and bytes that are
    not UTF-8 instead of passing them through or replacing them.
    """
    if _BAD_ESCAPE.search(raw):
        raise InvalidKey("bad percent-encoding in key")
    decoded = unquote_to_bytes(raw)
    try:
        return check_key(decoded.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidKey("key is not valid UTF-8") from None


def check_key(key: str) -> str:
    """``key`` itself when it may be used as a key; otherwise InvalidKey says why."""
    if not key:
        raise InvalidKey("empty key")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKey(f"key longer than {MAX_KEY_BYTES} bytes")
    return key
