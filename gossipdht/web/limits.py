"""The HTTP port's limits on the reactor: connections held, request deadlines, bytes of
bodies in flight and requests in progress, with their refusals counted and logged.

A node serves its API, the calls between nodes and the TCP probes on one port, so what
exhausts that port would take the node out of its cluster too.  Hence:

* **Connections.** ``LimitedFactory`` (Twisted's ``WrappingFactory``) counts them in
  ``admission.Slots``: at most ``--max-connections`` of clients.  Calls between nodes and
  TCP probes (``/internal/rpc`` upgrades) move to a reserve of their own once upgraded, so
  clients cannot take their share; past ``--max-connections`` a new connection takes a
  slot of the reserve, on which only such an upgrade is served and any other request is
  answered 503.  Past the reserve too, a new connection is answered 503 at once and
  closed.  The reserve is a share of the one port rather than a port of its own, so that
  nodes keep reaching each other where clients do (firewalls, ``--listen`` endpoints, TLS)
  and the members' addresses in gossip stay as they are.
* **Slow clients.** ``BoundedChannel`` (twisted.web's ``HTTPChannel``) gives a request's
  line and headers ``--header-timeout`` seconds from their first byte (from the
  connection's start for its first request), and its body ``--body-timeout`` seconds
  plus one second per ``--min-body-rate`` bytes received (Apache's mod_reqtimeout
  rule); past either it answers 408 and closes.  Idle connections between requests keep
  twisted.web's idle timeout, without its log line per connection.
* **Bytes in flight and overload** are checked by the request (``site.BoundedRequest``)
  through ``Limits``, once its headers are in and before its body is read.  A whole
  ``GET`` arriving between requests while the node is overloaded is answered 503 by the
  channel at once, before twisted.web parses it (``BoundedChannel.dataReceived``).
"""

from __future__ import annotations

from typing import Optional

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import IDelayedCall, IProtocolNegotiationFactory
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web.http import HTTPChannel
from zope.interface import implementer

from gossipdht.core import media
from gossipdht.core.admission import CLIENT, Budget, Slots, Tally

#: Seconds a client refused for load is asked to wait before it tries again.
RETRY_AFTER = 1
#: At most one log line of refusals this often, in seconds.
LOG_INTERVAL = 10.0
#: Seconds a connection refused at once waits for its client to close, reading what it
#: sends meanwhile: closing with unread data resets the connection, which can lose the 503.
LINGER_SECONDS = 1.0
#: Bytes read from a connection at a time (Twisted reads 64 KiB), as nginx reads bodies in
#: 16 KiB buffers: a thousand connections each sending a body that is refused left 27 MiB
#: of the node's heap in fragments with 64 KiB reads, 6.5 MiB with 16 KiB.
READ_BYTES = 16 << 10
#: The message of a request refused for load.
OVERLOADED = b"this node is overloaded; try again later\n"
#: Paths that are never shed for load: calls between nodes, and what operators watch.
NEVER_SHED = (b"/internal/", b"/health", b"/metrics", b"/dht/stats")
#: Requests answered 503 before they are parsed are at most this long, and name none of
#: these headers (lower case), which a request without a body that keeps its connection
#: does not need.
SHED_BYTES = 8 << 10
_NOT_SHED_AT_ONCE = (b"\r\ncontent-length:", b"\r\ntransfer-encoding:", b"\r\nconnection:", b"\r\nexpect:",
                     b"\r\nupgrade:")
_REASONS = {401: b"Unauthorized", 403: b"Forbidden", 408: b"Request Timeout", 413: b"Payload Too Large",
            503: b"Service Unavailable"}
_WHAT = {"connections": "connections over --max-connections and its reserve",
         "reserve": "requests of clients on connections of the reserve",
         "slow_headers": "requests whose headers were not complete in time",
         "slow_body": "request bodies slower than --min-body-rate",
         "inflight_bytes": "request bodies over --max-inflight-bytes",
         "overload": "requests over --max-requests-in-progress"}


def answer(code: int, message: bytes, headers: bytes = b"", close: bool = True) -> bytes:
    """A whole one-line text answer, as raw bytes; it closes the connection unless told."""
    if code == 503:
        headers += b"Retry-After: %d\r\n" % RETRY_AFTER
    if close:
        headers += b"Connection: close\r\n"
    return (b"HTTP/1.1 %d %s\r\n%sContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (code, _REASONS[code], headers, media.TEXT.encode(), len(message), message))


class Limits:
    """The limits of one node's HTTP port, what they hold now, and the refusals."""

    log = Logger()

    def __init__(self, reactor, max_connections: int = 1 << 16, reserve: int = 64,
                 max_inflight_bytes: int = 256 << 20, max_in_progress: int = 128, header_timeout: float = 10.0,
                 body_timeout: float = 10.0, min_body_rate: int = 32 << 10, log_interval: float = LOG_INTERVAL) -> None:
        self.reactor = reactor
        self.slots = Slots(max_connections, reserve)
        self.budget = Budget(max_inflight_bytes)
        self.max_in_progress = max_in_progress
        self.in_progress = 0
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.min_body_rate = min_body_rate
        self.tally = Tally(log_interval)
        self._summary: Optional[IDelayedCall] = None

    def refused(self, reason: str) -> None:
        """Counts a refusal; logs the refusals not yet logged if none were this interval,
        else once the interval is over."""
        now = self.reactor.seconds()
        if self.tally.count(reason, now):
            self._log_summary()
        elif self._summary is None:
            self._summary = self.reactor.callLater(max(0.0, self.tally.next_summary() - now), self._log_summary)

    def _log_summary(self) -> None:
        if self._summary is not None and self._summary.active():
            self._summary.cancel()
        self._summary = None
        refused = self.tally.summary(self.reactor.seconds())
        if refused:
            self.log.warn("refused, in the last {interval:g} s at most: {what} (counted in /dht/stats, \"http\")",
                          interval=self.tally.interval,
                          what="; ".join(f"{count} {_WHAT[reason]}" for reason, count in refused.items()))

    def stop(self) -> None:
        if self._summary is not None and self._summary.active():
            self._summary.cancel()
        self._summary = None

    def at_capacity(self) -> bool:
        """Whether as many requests are in progress as may be: the next is refused for load."""
        return self.in_progress >= self.max_in_progress

    def upgraded(self, transport) -> None:
        """``transport`` now carries calls between nodes (an ``/internal/rpc`` upgrade)."""
        if isinstance(transport, _Slot):
            transport.kind = self.slots.upgrade(transport.kind)

    def stats(self) -> dict:
        """The ``http`` section of ``/dht/stats``."""
        return {"connections": dict(self.slots.held), "max_connections": self.slots.limit,
                "connection_reserve": self.slots.reserve, "inflight_bytes": self.budget.used,
                "max_inflight_bytes": self.budget.limit, "requests_in_progress": self.in_progress,
                "max_requests_in_progress": self.max_in_progress, "refused": dict(self.tally.counts)}


class _Slot(ProtocolWrapper):
    """A connection holding a slot of ``kind``, read ``READ_BYTES`` at a time; gives the
    slot back when it ends."""

    kind = CLIENT

    def makeConnection(self, transport) -> None:
        if hasattr(transport, "bufferSize"):
            transport.bufferSize = READ_BYTES
        super().makeConnection(transport)

    def connectionLost(self, reason) -> None:
        self.factory.limits.slots.close(self.kind)
        super().connectionLost(reason)


class _Refused(Protocol):
    """A connection over every limit: answered 503 at once, closed once the client has
    read it (or after ``LINGER_SECONDS``)."""

    def __init__(self, reactor) -> None:
        self._reactor = reactor
        self._abort: Optional[IDelayedCall] = None

    def connectionMade(self) -> None:
        self.transport.write(answer(503, b"this node holds as many connections as it may; try again later\n"))
        self._abort = self._reactor.callLater(LINGER_SECONDS, self.transport.abortConnection)
        # Half-closed on TCP: the client reads the answer, then closes (TLS closes whole).
        if isinstance(self.transport, FileDescriptor):
            self.transport.loseWriteConnection()
        else:
            self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        """What the client sent is read and dropped."""

    def connectionLost(self, reason) -> None:
        if self._abort is not None and self._abort.active():
            self._abort.cancel()


@implementer(IProtocolNegotiationFactory)
class LimitedFactory(WrappingFactory):
    """Wraps the site: each connection takes a slot, or is refused with 503."""

    protocol = _Slot

    def acceptableProtocols(self) -> list[bytes]:
        """What TLS offers clients by ALPN: HTTP/1.1, which the site's channel speaks."""
        return [b"http/1.1"]

    def __init__(self, site, limits: Limits) -> None:
        super().__init__(site)
        self.limits = limits

    def buildProtocol(self, addr):
        kind = self.limits.slots.open()
        if kind is None:
            self.limits.refused("connections")
            refused = _Refused(self.limits.reactor)
            refused.factory = self
            return refused
        wrapper = super().buildProtocol(addr)
        wrapper.kind = kind
        return wrapper

    def registerProtocol(self, p) -> None:
        """Connections are counted by kind in ``Slots``, not kept in a dict."""

    def unregisterProtocol(self, p) -> None:
        pass


class BoundedChannel(HTTPChannel):
    """An HTTP connection whose requests must arrive in time: headers within the header
    timeout, bodies at the minimum rate; 408 and closed otherwise."""

    _deadline: Optional[IDelayedCall] = None

    @property
    def kind(self) -> str:
        """The kind of slot the connection holds (``admission``)."""
        return getattr(self.transport, "kind", CLIENT)

    def connectionMade(self) -> None:
        super().connectionMade()
        self._start(self.site.limits.header_timeout, "slow_headers")

    def dataReceived(self, data: bytes) -> None:
        if self._shed_at_once(data):
            return
        # The first bytes of a request start its headers' deadline.
        if self._deadline is None and not self._handlingRequest:
            self._start(self.site.limits.header_timeout, "slow_headers")
        super().dataReceived(data)

    def _shed_at_once(self, data: bytes) -> bool:
        """Whether ``data``, a whole ``GET`` without a body between requests, was answered
        503 for load here, its connection kept, before twisted.web parsed it.

        Refused through twisted.web's request, a ``GET`` cost half of what serving it did:
        under a flood of clients that try again at once, those 503s took the node's CPU
        from the requests it admitted (see the README's "Limits and overload")."""
        limits = self.site.limits
        if (not limits.at_capacity() or self._handlingRequest or self.requests or self._buffer
                or len(data) > SHED_BYTES or not data.startswith(b"GET ") or not data.endswith(b"\r\n\r\n")):
            return False
        head = data.lower()
        if (head.find(b"\r\n\r\n") != len(head) - 4 or not head[:head.find(b"\r\n")].endswith(b" http/1.1")
                or head[4:].startswith(NEVER_SHED) or any(name in head for name in _NOT_SHED_AT_ONCE)):
            return False
        self._stop()
        self.resetTimeout()
        limits.refused("overload")
        self.transport.write(answer(503, OVERLOADED, b"Date: %s\r\n" % self.site.date(), close=False))
        return True

    def allHeadersReceived(self) -> None:
        self._stop()
        super().allHeadersReceived()
        if self.length != 0 and not self.transport.disconnecting:
            self._start(self.site.limits.body_timeout, "slow_body")

    def rawDataReceived(self, data: bytes) -> None:
        if self._deadline is not None and not self._handlingRequest:
            self._deadline.delay(len(data) / self.site.limits.min_body_rate)
        super().rawDataReceived(data)

    def allContentReceived(self) -> None:
        self._stop()
        super().allContentReceived()

    def connectionLost(self, reason) -> None:
        self._stop()
        super().connectionLost(reason)

    def timeoutConnection(self) -> None:
        """The idle timeout: closed without twisted.web's log line per connection."""
        if self.abortTimeout is not None:
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()

    def _start(self, seconds: float, reason: str) -> None:
        self._stop()
        self._deadline = self.callLater(seconds, self._expired, reason)

    def _stop(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _expired(self, reason: str) -> None:
        self._deadline = None
        self.site.limits.refused(reason)
        limits = self.site.limits
        message = (b"request headers not complete within %g s\n" % limits.header_timeout if reason == "slow_headers"
                   else b"request body slower than %d bytes a second\n" % limits.min_body_rate)
        self.transport.write(answer(408, message))
        self.loseConnection()

