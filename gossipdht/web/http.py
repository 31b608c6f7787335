"""Pieces of HTTP handling shared by the API's resources: one-line answers and errors, keys
from paths, quorum parameters, values from bodies, ETags."""

from __future__ import annotations

from typing import Optional
from urllib.parse import unquote_to_bytes

from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from gossipdht.core import media
from gossipdht.core.errors import Refusal
from gossipdht.core.keys import InvalidKey, decode_path_segment
from gossipdht.data.coordinator import QuorumError
from gossipdht.storage import Record

FORM = b"application/x-www-form-urlencoded"
FORM_VALUE_PREFIX = b"value="
#: Content-Type headers of the API's own answers.
TEXT_PLAIN = media.TEXT.encode()
JSON = media.JSON.encode()
MAX_CONTENT_TYPE_LENGTH = 256


class ClientError(Exception):
    """A request the API refuses; ``code`` is the 4xx status, the message one line."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def plain(request: IRequest, code: int, message: str) -> bytes:
    """The body of a one-line text answer with status ``code``; for ``HEAD`` only its
    length (twisted.web would log a line for each ``HEAD`` answered with a body)."""
    request.setResponseCode(code)
    request.setHeader(b"content-type", TEXT_PLAIN)
    return head_or_body(request, message.encode() + b"\n")


def head_or_body(request: IRequest, body: bytes) -> bytes:
    """``body``, or for a ``HEAD`` request its length in ``Content-Length`` and no body."""
    if request.method == b"HEAD":
        request.setHeader(b"content-length", b"%d" % len(body))
        return b""
    return body


def failed(request: IRequest, failure: Failure, log: Logger) -> Optional[bytes]:
    """The one-line answer to a request that failed: the status a refusal carries (4xx,
    503 without a quorum, 504 while data moves), or 500, logged, for anything else;
    None when the client went away and there is nobody to answer."""
    if failure.check(CancelledError):
        return None
    if failure.check(ClientError, Refusal, QuorumError):
        return plain(request, failure.value.code, str(failure.value))
    log.failure("error answering {method} {path}", failure, method=request.method, path=request.path)
    return plain(request, 500, "internal error; the node's log has the details")


def etag(record: Record) -> bytes:
    version = record.version
    return b'"%x-%s"' % (version.timestamp, version.node.encode().hex().encode())


def header_values(request: IRequest, name: bytes) -> list[bytes]:
    return [v.strip() for raw in request.requestHeaders.getRawHeaders(name, []) for v in raw.split(b",")]


def key_from_path(request: IRequest, prefix: bytes) -> str:
    try:
        return decode_path_segment(request.path[len(prefix) :])
    except InvalidKey as e:
        raise ClientError(400, str(e)) from None


def quorum(request: IRequest, name: bytes, replicas: int) -> Optional[int]:
    """``?r=`` or ``?w=``: how many replicas must answer, 1..N; None for the default."""
    values = request.args.get(name)
    if not values:
        return None
    text = values[-1].decode("latin-1")
    if not text.isdigit() or not 1 <= int(text) <= replicas:
        raise ClientError(400, f"{name.decode()}={text} is not a whole number from 1 to N={replicas}")
    return int(text)


def value_from_body(request: IRequest, max_value_bytes: int) -> tuple[bytes, str]:
    """The value and its Content-Type; a form's ``value=`` field is stored as text."""
    body = request.content.read()
    raw_type = request.getHeader(b"content-type")
    if raw_type is not None and raw_type.lower().startswith(FORM) and body.startswith(FORM_VALUE_PREFIX):
        value = unquote_to_bytes(body[len(FORM_VALUE_PREFIX) :].replace(b"+", b" "))
        content_type = media.TEXT
    else:
        value = body
        content_type = media.OCTET_STREAM if raw_type is None else raw_type.decode("latin-1")
        if len(content_type) > MAX_CONTENT_TYPE_LENGTH:
            raise ClientError(400, f"Content-Type longer than {MAX_CONTENT_TYPE_LENGTH} bytes")
    if len(value) > max_value_bytes:
        raise ClientError(413, f"value larger than {max_value_bytes} bytes")
    return value, content_type
