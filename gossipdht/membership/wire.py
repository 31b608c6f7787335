"""The gossip wire format: one datagram is a version byte and a msgpack array.

``[sender, checksum, message, message, ...]``: the sender's name, the checksum of its
member list (compared on every exchange, as ringpop does), then any number of
messages, each a short array whose first element is its kind.  Messages are packed
one by one, so a datagram can be filled with piggybacked updates up to the size limit
without packing anything twice.  Decoding checks every field: a datagram that does
not fit the format raises ``WireError`` and nothing of it is used.
"""

from __future__ import annotations

import typing
from typing import Any, NamedTuple, Sequence, Union

import msgpack

VERSION = 1
MAX_DATAGRAM = 1400


class WireError(ValueError):
    """A datagram that is not a well-formed gossip datagram of our version."""


# Probes
class Ping(NamedTuple):
    """A direct probe."""

    seq: int
    target: str  # the name the sender means, so a reused address is not mistaken for it


class Ack(NamedTuple):
    """The answer to a probe."""

    seq: int
    #: The sender's wall clock, in milliseconds since the epoch (0: not said), from which
    #: the prober estimates the offset between their clocks.
    wall_ms: int = 0


class PingReq(NamedTuple):
    """A request to probe a member on the sender's behalf."""

    seq: int
    target: str
    host: str
    port: int


class Nack(NamedTuple):
    """A helper's word that the member it probed did not answer in time."""

    seq: int


# Membership updates
class Alive(NamedTuple):
    """A member is alive at this incarnation, at these addresses."""

    name: str
    incarnation: int
    host: str
    port: int  # gossip, over UDP
    api_port: int  # the HTTP API: push/pull, TCP probes, and data


class Suspect(NamedTuple):
    """A member is suspected of having failed."""

    name: str
    incarnation: int
    accuser: str


class Dead(NamedTuple):
    """A member is declared failed."""

    name: str
    incarnation: int
    accuser: str


class Left(NamedTuple):
    """A member left on purpose."""

    name: str
    incarnation: int


Message = Union[Ping, Ack, PingReq, Nack, Alive, Suspect, Dead, Left]
KINDS: tuple[type, ...] = (Ping, Ack, PingReq, Nack, Alive, Suspect, Dead, Left)
_CODE = {kind: code for code, kind in enumerate(KINDS)}
_FIELD_TYPES = {kind: tuple(typing.get_type_hints(kind).values()) for kind in KINDS}
_MAX_INT = (1 << 63) - 1


def pack_message(message: Message) -> bytes:
    return msgpack.packb((_CODE[type(message)], *message))


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    return b"\xdc" + n.to_bytes(2, "big")


def pack_datagram(sender: str, checksum: int, packed_messages: Sequence[bytes]) -> bytes:
    """A datagram of already packed messages (see ``pack_message``)."""
    return (
        bytes([VERSION])
        + _array_header(2 + len(packed_messages))
        + msgpack.packb(sender)
        + msgpack.packb(checksum)
        + b"".join(packed_messages)
    )


def datagram_overhead(sender: str) -> int:
    """Bytes a datagram spends before its messages (at most, for up to 65535 messages)."""
    return 1 + 3 + len(msgpack.packb(sender)) + 9


def pack_state(sender: str, state: Sequence[Message]) -> bytes:
    """A sender's full member list, for push/pull over TCP (no size limit)."""
    return bytes([VERSION]) + msgpack.packb([sender, [(_CODE[type(m)], *m) for m in state]])


def unpack_state(data: bytes, max_members: int = 100_000) -> tuple[str, list[Message]]:
    if not data or data[0] != VERSION:
        raise WireError("unknown wire version")
    try:
        body = msgpack.unpackb(data[1:], use_list=True, raw=False, max_array_len=max_members * 6)
    except Exception as e:
        raise WireError(f"not msgpack: {type(e).__name__}") from None
    if not isinstance(body, list) or len(body) != 2 or not isinstance(body[0], str) or not body[0]:
        raise WireError("not a member list")
    sender, raw_state = body
    if not isinstance(raw_state, list) or len(raw_state) > max_members:
        raise WireError("not a member list")
    return sender, [_message(raw) for raw in raw_state]


def unpack_datagram(data: bytes) -> tuple[str, int, list[Message]]:
    if len(data) > MAX_DATAGRAM:
        raise WireError(f"datagram of {len(data)} bytes, over {MAX_DATAGRAM}")
    if not data or data[0] != VERSION:
        raise WireError("unknown wire version")
    try:
        body = msgpack.unpackb(data[1:], use_list=True, raw=False, strict_map_key=True)
    except Exception as e:  # msgpack raises several unrelated types on garbage
        raise WireError(f"not msgpack: {type(e).__name__}") from None
    if not isinstance(body, list) or len(body) < 2:
        raise WireError("not a datagram array")
    sender, checksum, *raw_messages = body
    if not isinstance(sender, str) or not sender or type(checksum) is not int:
        raise WireError("bad datagram header")
    return sender, checksum, [_message(raw) for raw in raw_messages]


def _message(raw: Any) -> Message:
    if not isinstance(raw, list) or not raw or type(raw[0]) is not int or not 0 <= raw[0] < len(KINDS):
        raise WireError("unknown message")
    kind = KINDS[raw[0]]
    fields = raw[1:]
    types = _FIELD_TYPES[kind]
    if len(fields) != len(types):
        raise WireError(f"{kind.__name__}: wrong number of fields")
    for value, expected in zip(fields, types):
        if type(value) is not expected or (expected is int and not 0 <= value <= _MAX_INT):
            raise WireError(f"{kind.__name__}: bad field")
    return kind(*fields)
