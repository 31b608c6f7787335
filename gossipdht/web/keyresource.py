"""``/db/<key>``, the hot path of the API, as a plain twisted.web resource.

Klein's routing (werkzeug URL matching, its request wrappers) cost about as much CPU per
request as twisted.web's whole HTTP handling; single-key requests skip it.  Klein serves
every other path (``RestAPI``); the site picks one of the two by path (``request.Site``).
"""

from __future__ import annotations

from time import perf_counter
from typing import Callable, Optional

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from gossipdht.core.ring import CHECKSUM_HEADER
from gossipdht.data.coordinator import Coordinator
from gossipdht.storage import Record
from gossipdht.web.http import ClientError, etag, failed, header_values, key_from_path, plain, quorum, value_from_body
from gossipdht.web.metrics import KEY_OPERATIONS, RequestMetrics

KEY_PREFIX = b"/db/"
RING_HEADER = CHECKSUM_HEADER.encode()
ALLOWED = b"GET, HEAD, PUT, POST, DELETE"


class KeyResource(Resource):
    """``/db/<key>``: GET, HEAD, PUT, POST and DELETE of one key."""

    isLeaf = True
    log = Logger()

    def __init__(self, coordinator: Coordinator, max_value_bytes: int, replicas: int,
                 metrics: Optional[RequestMetrics] = None, ring_checksum: Optional[Callable[[], str]] = None) -> None:
        super().__init__()
        self.coordinator = coordinator
        self.max_value_bytes = max_value_bytes
        self.replicas = replicas
        self.metrics = metrics
        #: The checksum of the node's ring now, sent on every answer (``RING_HEADER``).
        self.ring_checksum = ring_checksum

    def render(self, request: IRequest):
        started = perf_counter()
        if self.ring_checksum is not None:
            request.setHeader(RING_HEADER, self.ring_checksum().encode())
        try:
            answer = self._start(request)
        except ClientError as e:
            return self._observed(plain(request, e.code, str(e)), request, started)
        request.notifyFinish().addErrback(lambda _: answer.cancel())  # the client went away
        answer.addCallbacks(self._answered, self._failed, callbackArgs=(request, started),
                            errbackArgs=(request, started))
        return NOT_DONE_YET

    def _start(self, request: IRequest) -> Deferred:
        method = request.method
        if method not in (b"GET", b"HEAD", b"PUT", b"POST", b"DELETE"):
            request.setHeader(b"allow", ALLOWED)
            raise ClientError(405, f"method {method.decode('latin-1')} not allowed here")
        key = key_from_path(request, KEY_PREFIX)
        if method in (b"GET", b"HEAD"):
            return self.coordinator.get(key, quorum(request, b"r", self.replicas)).addCallback(_read, request)
        w = quorum(request, b"w", self.replicas)
        if method == b"DELETE":
            written = self.coordinator.delete(key, w)
        else:
            value, content_type = value_from_body(request, self.max_value_bytes)
            written = self.coordinator.put(key, value, content_type, w)
        return written.addCallback(_written, request)

    def _observed(self, body: bytes, request: IRequest, started: float) -> bytes:
        """``body``, once the request is counted and timed (its answer is written at once)."""
        if self.metrics is not None:
            self.metrics.observe(KEY_OPERATIONS.get(request.method, "other"), request.code, started)
        return body

    def _answered(self, body: bytes, request: IRequest, started: float) -> None:
        request.write(body)
        request.finish()
        self._observed(b"", request, started)

    def _failed(self, failure: Failure, request: IRequest, started: float) -> None:
        body = failed(request, failure, self.log)
        if body is not None:  # None: the client went away, and the request is not counted
            self._answered(body, request, started)


def _written(record: Record, request: IRequest) -> bytes:
    request.setResponseCode(204)
    request.setHeader(b"etag", etag(record))
    return b""


def _read(record: Optional[Record], request: IRequest) -> bytes:
    if record is None:
        request.setResponseCode(404)
        return b""
    tag = etag(record)
    request.setHeader(b"etag", tag)
    if tag in header_values(request, b"if-none-match"):
        request.setResponseCode(304)
        return b""
    request.setHeader(b"content-type", record.content_type.encode("latin-1"))
    request.setHeader(b"content-length", b"%d" % len(record.value))
    return record.value
