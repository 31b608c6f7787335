"""Calls between nodes over one kept TCP connection per peer.

An internal HTTP request through treq cost the calling node about 1 ms of CPU, whatever
it carried; with the 2-4 keys that batches hold under 16 concurrent clients, that was
most of the cost of a replicated read or write.  A call here is one length-prefixed
msgpack frame each way on a connection that stays open, and calls share it: each
request is ``[id, method, body]``, each answer ``[id, status, body]``, in any order.

The connection starts as an HTTP request to the node's API port (``GET /internal/rpc``
with ``Upgrade: gossipdht-rpc/1``, answered ``101 Switching Protocols``, as WebSocket
does), so a node still listens on one TCP port; the client sends its first frame once
the 101 came.  Statuses follow HTTP: 200, 400 for a body the handler refused, 404 for an
unknown method, the code of a ``Refusal``, 500 for a failure of the handler.

With a keyring, the connection is sealed.  The client's request carries a random nonce
sealed with its primary key (``Gossipdht-Hello``): a server that cannot open it answers
403 with one line saying why, before any frame.  The server's 101 carries a nonce of its
own (``Gossipdht-Challenge``), and every frame is then sealed with keys derived from the
hello's key and both nonces (``core.session``): a frame replayed, reordered, or taken from
another connection does not open, and ends the connection, as does the removal of the
hello's key from the keyring.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import os
from typing import Awaitable, Callable, Optional, Union

import msgpack
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.defer import TimeoutError as DeferTimeout
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from gossipdht.core import media
from gossipdht.core.address import Address
from gossipdht.core.batches import BATCH_BYTES
from gossipdht.core.errors import PeerError, Refusal
from gossipdht.core.keyring import Unopened
from gossipdht.core.sealing import REASONS, Refused, Sealing
from gossipdht.core.session import Session
from gossipdht.net.idempotent import once_more
from gossipdht.net.messages import BadMessage

PATH = b"/internal/rpc"
PROTOCOL = b"gossipdht-rpc/1"
CONNECT_SECONDS = 5.0
HELLO = b"gossipdht-hello"
CHALLENGE = b"gossipdht-challenge"
NONCE_BYTES = 16
_HANDSHAKE_LIMIT = 4096
_HELLO_PURPOSE = b"rpc-hello"


def max_frame_bytes(max_value_bytes: int) -> int:
    """A batch's values, one more value, and room for up to a batch of keys and types."""
    return BATCH_BYTES + max_value_bytes + (2 << 20)


Handler = Callable[[bytes], Union[bytes, Deferred, Awaitable[bytes]]]
#: Says why a request to upgrade is refused before anything else is looked at (None: go on).
Admit = Callable[[IRequest], Optional[str]]
#: Why an upgrade was refused, besides the sealing's reasons: ``Admit`` said no (no client
#: certificate of the cluster's CA), or the hello was no sealed nonce.
ADMIT = "admit"
MALFORMED = "malformed"
REFUSALS = (*REASONS, ADMIT, MALFORMED)


class _Plain:
    """The frames of a connection that is not sealed."""

    def seal(self, frame: bytes) -> bytes:
        return frame

    def open(self, frame: bytes) -> bytes:
        return frame


#: ``endpoint(host, port)``: how a connection to a peer is made.
Endpoints = Callable[[str, int], IStreamClientEndpoint]


def tcp_endpoint(reactor, host: str, port: int) -> IStreamClientEndpoint:
    """A plain TCP connection to a peer, given up after ``CONNECT_SECONDS``."""
    return HostnameEndpoint(reactor, host, port, timeout=CONNECT_SECONDS)


class _Framed(Int32StringReceiver):
    """Frames of msgpack arrays; a frame that is not one, or does not open, ends the connection."""

    def __init__(self, max_frame_bytes: int) -> None:
        self.MAX_LENGTH = max_frame_bytes
        self.frames: Union[_Plain, Session] = _Plain()

    def stringReceived(self, frame: bytes) -> None:
        try:
            message = msgpack.unpackb(self.frames.open(frame), use_list=True, raw=False)
            number, head, body = message
            if not (isinstance(number, int) and isinstance(body, bytes)):
                raise ValueError
        except (ValueError, TypeError):  # msgpack's errors and Unopened are ValueErrors too
            self.transport.loseConnection()
            return
        self.message(number, head, body)

    def message(self, number: int, head, body: bytes) -> None:
        raise NotImplementedError

    def send(self, number: int, head, body: bytes) -> None:
        try:
            frame = self.frames.seal(msgpack.packb([number, head, body], use_bin_type=True))
        except Unopened:  # the connection's key was removed: a new connection takes the call
            self.transport.loseConnection()
            return
        self.sendString(frame)

    def lengthLimitExceeded(self, length: int) -> None:
        self.transport.loseConnection()


class CallBytes:
    """The bytes of the calls being answered on every connection from other nodes: past
    ``limit``, no such connection is read until answers bring them back under it.  Nothing
    is refused: TCP's flow control holds the callers back meanwhile, as HTTP/2's windows do,
    so that a burst of batches and handoffs cannot grow the node's memory without end."""

    def __init__(self, limit: float = math.inf) -> None:
        self.limit = limit
        self.used = 0
        #: Times reading stopped for it.
        self.pauses = 0
        self.paused = False
        self.servers: set[_Server] = set()

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit and not self.paused:
            self.paused = True
            self.pauses += 1
            for server in self.servers:
                server.transport.pauseProducing()

    def give(self, size: int) -> None:
        self.used -= size
        if self.paused and self.used <= self.limit:
            self.paused = False
            for server in self.servers:
                server.transport.resumeProducing()


class _Server(_Framed):
    log = Logger()

    def __init__(self, handlers: dict[str, Handler], max_frame_bytes: int, calls: CallBytes) -> None:
        super().__init__(max_frame_bytes)
        self.handlers = handlers
        self._calls = calls

    def connectionLost(self, reason: Failure) -> None:
        self._calls.servers.discard(self)

    def message(self, number: int, method, body: bytes) -> None:
        handler = self.handlers.get(method) if isinstance(method, str) else None
        if handler is None:
            self.send(number, 404, f"no method {method!r}".encode())
            return
        self._calls.take(len(body))
        maybeDeferred(handler, body).addCallbacks(
            lambda answer: self.send(number, 200, answer), self._failed, errbackArgs=(number, method)).addBoth(
            lambda _: self._calls.give(len(body)))

    def _failed(self, failure: Failure, number: int, method: str) -> None:
        if failure.check(BadMessage):
            self.send(number, 400, f"bad internal message: {failure.value}".encode())
            return
        if failure.check(Refusal):
            self.send(number, failure.value.code, str(failure.value).encode())
            return
        self.log.failure("error answering the call {method}", failure, method=method)
        self.send(number, 500, b"internal error; the node's log has the details")


class RpcResource(Resource):
    """``GET /internal/rpc`` with the Upgrade header: the connection becomes a ``_Server``."""

    isLeaf = True
    log = Logger()

    def __init__(self, handlers: dict[str, Handler], max_frame_bytes: int, sealing: Sealing = Sealing(),
                 admit: Optional[Admit] = None) -> None:
        super().__init__()
        self.handlers = handlers
        self.max_frame_bytes = max_frame_bytes
        #: The calls being answered, bounded in bytes once the node's site sets the limit
        #: (``--max-inflight-bytes``, apart from clients').
        self.calls = CallBytes()
        self.sealing = sealing
        self.admit = admit or (lambda request: None)
        #: Called with the transport of each connection upgraded (the site counts them apart).
        self.upgraded: Callable[[object], None] = lambda transport: None
        #: Upgrades refused, by reason (``REFUSALS``).
        self.refused: dict[str, int] = {}

    def render(self, request: IRequest):
        if (request.getHeader(b"upgrade") or b"").lower() != PROTOCOL:
            request.setResponseCode(426)
            request.setHeader(b"upgrade", PROTOCOL)
            request.setHeader(b"content-type", media.TEXT.encode())
            # No body for HEAD, which twisted.web would log once per request.
            return b"" if request.method == b"HEAD" else b"this path speaks " + PROTOCOL + b" only, after an HTTP Upgrade\n"
        refusal = self.admit(request)
        if refusal is not None:
            return self._refuse(request, ADMIT, refusal)
        frames: Union[_Plain, Session] = _Plain()
        extra = b""
        hello = request.getHeader(HELLO)
        try:
            if hello is not None:
                client_nonce, key = self.sealing.open_sealed_with_key(base64.b64decode(hello, validate=True),
                                                                      _HELLO_PURPOSE)
                if len(client_nonce) != NONCE_BYTES:
                    raise ValueError
                server_nonce = os.urandom(NONCE_BYTES)
                frames = Session(self.sealing.keyring, key, self.sealing.cluster, client_nonce, server_nonce,
                                 client=False)
                extra = CHALLENGE + b": " + base64.b64encode(server_nonce) + b"\r\n"
            else:
                self.sealing.check_plaintext()
        except Refused as e:  # before ValueError, which it is too
            return self._refuse(request, e.reason, f"internal call refused: {_why(e)}")
        except (binascii.Error, ValueError):
            return self._refuse(request, MALFORMED, "the hello is not a sealed nonce in base64")
        # Take the connection from twisted.web (as autobahn's WebSocketResource does):
        # the HTTP channel must neither time it out nor answer this request.
        channel = request.channel
        channel.setTimeout(None)
        transport, channel.transport = channel.transport, None
        transport.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + PROTOCOL
                        + b"\r\n" + extra + b"\r\n")
        server = _Server(self.handlers, self.max_frame_bytes, self.calls)
        self.calls.servers.add(server)
        server.frames = frames
        _receive_with(transport, server)
        self.upgraded(transport)
        server.makeConnection(transport)
        if not self.calls.paused:
            transport.resumeProducing()  # twisted.web pauses reading while it serves a request
        return NOT_DONE_YET

    def close(self) -> None:
        """End the connections of other nodes: a node that stops answers no more calls."""
        for server in list(self.calls.servers):
            server.transport.loseConnection()

    def _refuse(self, request: IRequest, reason: str, message: str) -> bytes:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        peer = request.getClientAddress()
        self.log.warn("refused an internal connection from {peer}: {message}",
                      peer=getattr(peer, "host", peer), message=message)
        request.setResponseCode(403)
        request.setHeader(b"content-type", media.TEXT.encode())
        # Nothing more is read from a caller refused: the connection ends with the answer.
        channel = request.channel  # the request lets go of it when it finishes
        request.notifyFinish().addBoth(lambda _: channel.loseConnection())
        return message.encode() + b"\n"


def _why(refused: Refused) -> str:
    """The refusal as the caller reads it: which side lacks what."""
    return {"plaintext": "the caller sent plaintext, and the node called accepts only traffic sealed with its "
                         "gossip keyring (give the caller the cluster's keyring)",
            "no_key_opens": "no key installed on the node called opens the caller's: the two nodes' gossip "
                            "keyrings (or --cluster-name) differ",
            "sealed_but_no_keyring": "the caller seals its traffic with a gossip keyring, and the node called "
                                     "has none",
            }.get(refused.reason, str(refused))


def _receive_with(transport, protocol) -> None:
    """What arrives on ``transport`` goes to ``protocol`` from now on; Twisted has no API
    for it (twisted#3204): the transport's protocol is replaced, or, where the transport is
    a protocol wrapper (the site's connection limit, or TLS, which an ``ssl:`` endpoint
    starts on the TCP connection), the protocol it wraps."""
    if isinstance(transport, ProtocolWrapper):
        transport.wrappedProtocol = protocol
    else:
        transport.protocol = protocol


class _Lost(PeerError):
    """The connection ended while a call waited for its answer."""


class _Client(_Framed):
    """One connection to a peer: the calls in flight by number, and who waits for the
    connection to be ready."""

    def __init__(self, host: bytes, max_frame_bytes: int, sealing: Sealing, forget: Callable[[], None]) -> None:
        super().__init__(max_frame_bytes)
        self.host = host
        self.sealing = sealing
        self.forget = forget
        self.calls: dict[int, Deferred[tuple[int, bytes]]] = {}
        self.numbers = itertools.count()
        self.upgraded = False
        self._waiting: list[Deferred[_Client]] = []
        self._handshake = b""
        self._nonce = os.urandom(NONCE_BYTES)
        self._key = b""  # the key that sealed the hello, and so the connection
        self._refusal: Optional[PeerError] = None

    def ready(self) -> Deferred[_Client]:
        if self.upgraded:
            return succeed(self)
        waiting: Deferred[_Client] = Deferred(self._waiting.remove)
        self._waiting.append(waiting)
        return waiting

    def connectionMade(self) -> None:
        hello = b""
        if self.sealing.seals:
            self._key = self.sealing.keyring.primary
            hello = HELLO + b": " + base64.b64encode(self.sealing.seal(self._nonce, _HELLO_PURPOSE)) + b"\r\n"
        self.transport.write(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s\r\n"
                             % (PATH, self.host, PROTOCOL, hello))

    def dataReceived(self, data: bytes) -> None:
        if self.upgraded:
            super().dataReceived(data)
            return
        self._handshake += data
        head, end, rest = self._handshake.partition(b"\r\n\r\n")
        if not end:
            if len(self._handshake) > _HANDSHAKE_LIMIT:
                self.transport.loseConnection()
            return
        status_line, *header_lines = head.split(b"\r\n")
        if not status_line.startswith(b"HTTP/1.1 101 "):
            self._refused(status_line, header_lines, rest)
            return
        headers = dict(line.partition(b":")[::2] for line in header_lines)
        challenge = {name.strip().lower(): value.strip() for name, value in headers.items()}.get(CHALLENGE)
        if self.sealing.seals:
            try:
                server_nonce = base64.b64decode(challenge or b"", validate=True)
            except (binascii.Error, ValueError):
                server_nonce = b""
            if len(server_nonce) != NONCE_BYTES:  # a server without a keyring, or not ours
                self._refusal = PeerError("the peer did not answer this node's sealed hello with a challenge: "
                                          "it has no gossip keyring", status=403)
                self.transport.loseConnection()
                return
            self.frames = Session(self.sealing.keyring, self._key, self.sealing.cluster, self._nonce, server_nonce,
                                  client=True)
        self.upgraded = True
        waiting, self._waiting = self._waiting, []
        for ready in waiting:
            ready.callback(self)
        if rest:
            super().dataReceived(rest)

    def _refused(self, status_line: bytes, header_lines: list[bytes], body: bytes) -> None:
        """A refusal instead of the upgrade: its status and one-line reason, once its body is in."""
        parts = status_line.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        lengths = [line.partition(b":")[2].strip() for line in header_lines if line.lower().startswith(b"content-length:")]
        if lengths and lengths[0].isdigit() and len(body) < int(lengths[0]) and len(body) <= _HANDSHAKE_LIMIT:
            return  # more of the body to come
        reason = body.decode("utf-8", "replace").strip() or status_line.decode("latin-1")
        self._refusal = PeerError(reason, status=status)
        self.transport.loseConnection()

    def call(self, method: str, body: bytes) -> Deferred[tuple[int, bytes]]:
        number = next(self.numbers)
        answer: Deferred[tuple[int, bytes]] = Deferred(lambda _: self.calls.pop(number, None))
        self.calls[number] = answer
        self.send(number, method, body)
        return answer

    def message(self, number: int, status, body: bytes) -> None:
        answer = self.calls.pop(number, None)
        if answer is not None:
            answer.callback((status, body))

    def failed(self, reason: Failure) -> None:
        """The connection ended, or never began: everyone waiting is told."""
        self.forget()
        waiting, self._waiting = self._waiting, []
        calls, self.calls = self.calls, {}
        for ready in waiting:
            ready.errback(self._refusal or PeerError(f"no connection: {reason.getErrorMessage()}"))
        for answer in calls.values():
            answer.errback(_Lost(f"connection lost: {reason.getErrorMessage()}"))

    connectionLost = failed


class RpcClient:
    """Calls to other nodes, one connection per address, opened when first needed."""

    def __init__(self, reactor, max_frame_bytes: int, sealing: Sealing = Sealing(),
                 endpoint: Optional[Endpoints] = None) -> None:
        self._reactor = reactor
        self._max_frame_bytes = max_frame_bytes
        self._sealing = sealing
        self._endpoint = endpoint or (lambda host, port: tcp_endpoint(reactor, host, port))
        self._clients: dict[tuple[str, int], _Client] = {}

    async def call(self, address: tuple[str, int], method: str, body: bytes, timeout: float) -> bytes:
        """The answer's body; PeerError when the peer cannot be reached, times out, refuses
        the connection or answers with another status than 200.  Calls are idempotent: one
        whose connection was lost before the answer is made again, once, on a new one."""
        async def attempt() -> tuple[int, bytes]:
            client = await self._client(address).ready().addTimeout(timeout, self._reactor)
            return await client.call(method, body).addTimeout(timeout, self._reactor)
        try:
            status, answer = await once_more(attempt, lambda error: isinstance(error, _Lost))
        except (CancelledError, DeferTimeout):
            raise PeerError(f"{Address(*address)} timed out", timed_out=True) from None
        except PeerError as e:
            raise PeerError(f"{Address(*address)}: {e}", status=e.status) from None
        if status != 200:
            raise PeerError(f"{Address(*address)} answered {status} to {method}: "
                            f"{answer.decode('utf-8', 'replace').strip()}", status=status)
        return answer

    def _client(self, address: tuple[str, int]) -> _Client:
        """The connection to ``address``, or a new one when there is none or it was lost."""
        client = self._clients.get(address)
        if client is None:
            def forget() -> None:
                if self._clients.get(address) is client:
                    del self._clients[address]

            client = self._clients[address] = _Client(str(Address(*address)).encode(), self._max_frame_bytes,
                                                       self._sealing, forget)
            self._endpoint(*address).connect(Factory.forProtocol(lambda: client)).addErrback(client.failed)
        return client

    def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            if client.transport is not None:
                client.transport.loseConnection()
