"""The HTTP request class: refuses oversized bodies before reading them.

twisted.web reads a whole request body before any handler runs and sets no limit,
so the limit is enforced here, where the body arrives: a declared Content-Length
over the limit is answered with 413 at once, and a chunked body is cut off as soon
as it passes the limit.  Either way the connection is closed, since the rest of
the body is never read.

With API tokens (``gossipdht.web.tokens``) the request's token is checked there too, once
its headers are in: a request refused (401, 403) has its body never read either.  So are
the node's limits (``gossipdht.web.limits``): a client's request on a slot of the
connections' reserve, a request over ``--max-requests-in-progress``, and a body that would
pass ``--max-inflight-bytes`` are answered 503 with ``Retry-After`` and the connection
closed, but for a request without a body refused for load, whose connection is kept (so
that its client does not reconnect: under a flood, reconnections overflowed the listen
queue, and a dropped connection attempt waits a second to be retried).  A body's bytes
count in flight until its request is answered.

The site also routes the hot paths itself: a request whose path starts with one of its
``prefixes`` goes straight to that resource (see ``BoundedRequest.process``).
"""

from __future__ import annotations

from io import BytesIO
from urllib.parse import unquote_to_bytes

from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.http import datetimeToString
from twisted.web.resource import Resource

from gossipdht.core.admission import RESERVE
from gossipdht.core.batches import BATCH_BYTES
from gossipdht.web.http import TEXT_PLAIN
from gossipdht.web.limits import NEVER_SHED, OVERLOADED, RETRY_AFTER, BoundedChannel, Limits, answer
from gossipdht.web.tokens import Tokens, refusal

_TOO_LARGE = b"request body larger than %d bytes\n"
_CHALLENGE = b'WWW-Authenticate: Bearer realm="gossipdht"\r\n'


class BoundedRequest(server.Request):
    """A request that refuses a body larger than its limit before reading it."""

    #: Set by the site; the largest request body accepted, in bytes.
    max_body_bytes = 1 << 20
    #: Set by the site; None: no token is needed.
    tokens: Tokens | None = None
    #: Responses without a body (204, 404 of a missing key) carry no Content-Type.
    defaultContentType = None

    _refused = False
    _received = 0
    #: Body bytes this request holds of the node's budget, and whether it is in progress.
    _held = 0
    _in_progress = False
    #: Refused for load, to be answered 503 without its connection closed.
    _shed = False

    def body_limit(self) -> int:
        """Form bodies (``value=...``) percent-encode the value: up to three bytes each.
        Batches between nodes and bulk writes carry many values."""
        # The request line is parsed before the headers, but ``self.path`` is only set
        # once the body is in: the channel holds the path meanwhile.
        path = getattr(self.channel, "_path", None) or getattr(self, "path", b"")
        if path.startswith(b"/internal/") or path.split(b"?")[0] == b"/db":
            return BATCH_BYTES + self.max_body_bytes
        content_type = self.requestHeaders.getRawHeaders(b"content-type", [b""])[0]
        if content_type.lower().startswith(b"application/x-www-form-urlencoded"):
            return 3 * self.max_body_bytes + len(b"value=")
        return self.max_body_bytes

    def gotLength(self, length: int | None) -> None:
        # Called once the headers are in: the method and path are still the channel's.
        channel = self.channel
        path = channel._path
        refused = None if self.tokens is None else refusal(
            self.tokens, channel._command, path, self.requestHeaders.getRawHeaders(b"authorization", []))
        limits = channel.site.limits
        if refused is not None:
            self._refuse(refused.code, refused.message.encode() + b"\n")
        elif length is not None and length > self.body_limit():
            self._refuse(413, _TOO_LARGE % self.max_body_bytes)
        elif channel.kind == RESERVE and not path.startswith(b"/internal/"):
            self._refuse(503, b"this node holds as many client connections as it may; try again later\n", "reserve")
        elif path.startswith(NEVER_SHED):
            super().gotLength(length)
        elif limits.at_capacity():
            if length == 0:  # answered as any request, the connection kept: no reconnection
                self._shed = True
                limits.refused("overload")
                super().gotLength(length)
            else:
                self._refuse(503, OVERLOADED, "overload")
        elif length and not limits.budget.take(length):
            self._refuse(503, b"this node holds as many request bodies as it may; try again later\n", "inflight_bytes")
        else:
            self._held = length or 0
            self._in_progress = True
            limits.in_progress += 1
            super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.body_limit():
            self._refuse(413, _TOO_LARGE % self.max_body_bytes)
            return
        if self._received > self._held:  # a chunked body takes its bytes as they come
            if not self.channel.site.limits.budget.take(self._received - self._held):
                self._refuse(503, b"this node holds as many request bodies as it may; try again later\n",
                             "inflight_bytes")
                return
            self._held = self._received
        super().handleContentChunk(data)

    def finish(self):
        limits = self.channel.site.limits if self.channel is not None else None
        result = super().finish()
        if limits is not None:
            self._release(limits)
        return result

    def connectionLost(self, reason) -> None:
        limits = self.channel.site.limits if self.channel is not None else None
        super().connectionLost(reason)
        if limits is not None:
            self._release(limits)

    def _release(self, limits: Limits) -> None:
        """Gives back the body's bytes and the place in progress, once."""
        limits.budget.give(self._held)
        self._held = 0
        if self._in_progress:
            self._in_progress = False
            limits.in_progress -= 1

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)

    def process(self) -> None:
        """A path with one of the site's prefixes is rendered by that resource, with less
        of twisted.web's work per request: no resource traversal and no ``prepath`` or
        ``postpath``, which it does not use, and a ``Date`` formatted once a second.
        ``GET`` of single keys through one node: 1.10-1.12 times the rate (7 interleaved rounds)."""
        site = self.channel.site
        if self._shed:
            self.setResponseCode(503)
            self.setHeader(b"retry-after", b"%d" % RETRY_AFTER)
            self.setHeader(b"content-type", TEXT_PLAIN)
            self.setHeader(b"content-length", b"%d" % len(OVERLOADED))
            self.write(b"" if self.method == b"HEAD" else OVERLOADED)
            self.finish()
            return
        for prefix, resource in site.prefixes:
            if self.path.startswith(prefix):
                self.site = site
                self.setHeader(b"server", server.version)
                self.setHeader(b"date", site.date())
                try:
                    self.render(resource)
                except BaseException:
                    self.processingFailed(Failure())
                return
        # Routing decodes the path as UTF-8; refuse what it cannot decode here, quietly.
        try:
            unquote_to_bytes(self.path).decode("utf-8")
        except UnicodeDecodeError:
            self.setResponseCode(400)
            self.setHeader(b"content-type", TEXT_PLAIN)
            self.write(b"URL path is not valid UTF-8 once percent-decoded\n")
            self.finish()
        else:
            super().process()

    def _refuse(self, code: int, message: bytes, reason: str | None = None) -> None:
        """Answer ``code`` on the wire and close: the body, if any, is never read; a
        refusal of the node's limits is counted as ``reason``."""
        self._refused = True
        self.content = BytesIO()
        # No "100 Continue" after the refusal: the client must not send the body.
        self.requestHeaders.removeHeader(b"expect")
        channel = self.channel
        if reason is not None:
            channel.site.limits.refused(reason)
        channel.transport.write(answer(code, message, _CHALLENGE if code == 401 else b""))
        channel.transport.loseConnection()


class Site(server.Site):
    """A site whose requests are bounded, within ``limits``, and need one of ``tokens`` if
    given, with no per-request access log; paths that start with one of ``prefixes`` go to
    its resource, the others to ``resource``."""

    displayTracebacks = False
    noisy = False
    # HTTP/1.1 only (no ALPN is offered): the channel itself, without twisted.web's wrapper
    # that would switch to HTTP/2.
    protocol = BoundedChannel

    def __init__(self, resource: Resource, max_body_bytes: int,
                 prefixes: dict[bytes, Resource] | None = None, tokens: Tokens | None = None,
                 limits: Limits | None = None, **kwargs) -> None:
        request_class = type("BoundedRequest", (BoundedRequest,),
                             {"max_body_bytes": max_body_bytes, "tokens": tokens})
        super().__init__(resource, requestFactory=request_class, **kwargs)
        self.limits = limits or Limits(self.reactor)
        self.prefixes = list((prefixes or {}).items())
        self._date_second = -1
        self._date = b""

    def getContentFile(self, length: int | None) -> BytesIO:
        """Request bodies are kept in memory, as twisted.web keeps those under 100 kB: the
        requests are bounded, and their handlers read a body whole anyway.  (Without this
        method twisted.web looked it up in vain, an AttributeError on every request.)"""
        return BytesIO()

    def date(self) -> bytes:
        """The ``Date`` header of the current second."""
        second = int(self.reactor.seconds())
        if second != self._date_second:
            self._date_second, self._date = second, datetimeToString(second)
        return self._date

    def log(self, request) -> None:
        """Access logging is off: one log line per request costs more than it tells."""
