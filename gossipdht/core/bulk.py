"""Bodies of a bulk write (``POST /db``): many keys and their values in one request.

Two formats: ``text/tab-separated-values``, one ``key<TAB>value`` line per key (the
value is the rest of the line, tabs included), and ``application/json``, an object of
key to string value.  Both are checked whole before anything is written, so a bad
body changes nothing.  A key given twice keeps its last value, as in a JSON object.
"""

from __future__ import annotations

import json

from gossipdht.core.keys import InvalidKey, check_key


class BadBulk(ValueError):
    """The body cannot be used; the message (one line) names the first bad line or key."""


def parse_tsv(body: bytes, max_value_bytes: int) -> dict[str, bytes]:
    lines = body.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    items: dict[str, bytes] = {}
    for number, line in enumerate(lines, 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        key, tab, value = line.partition(b"\t")
        try:
            if not tab:
                raise BadBulk("no tab between key and value")
            value.decode("utf-8")  # only checked: the value is stored as it came
            items[_key(key.decode("utf-8"))] = _value(value, max_value_bytes)
        except UnicodeDecodeError:
            raise BadBulk(f"line {number}: not valid UTF-8") from None
        except BadBulk as e:
            raise BadBulk(f"line {number}: {e}") from None
    return items


def parse_json(body: bytes, max_value_bytes: int) -> dict[str, bytes]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadBulk(f"not JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(document, dict):
        raise BadBulk("the JSON body must be an object of key to string value")
    items: dict[str, bytes] = {}
    for key, value in document.items():
        if not isinstance(value, str):
            raise BadBulk(f"key {key!r}: the value must be a string")
        try:
            items[_key(key)] = _value(value.encode("utf-8"), max_value_bytes)
        except (UnicodeEncodeError, BadBulk) as e:
            raise BadBulk(f"key {key[:100]!r}: {e}") from None
    return items


def _key(key: str) -> str:
    try:
        return check_key(key)
    except InvalidKey as e:
        raise BadBulk(str(e)) from None


def _value(value: bytes, max_value_bytes: int) -> bytes:
    if len(value) > max_value_bytes:
        raise BadBulk(f"value larger than {max_value_bytes} bytes")
    return value
