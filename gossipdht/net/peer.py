"""The HTTP client a node uses to reach other nodes' APIs: one pool per process.

treq's ``timeout`` only covers the wait for response headers, so each body read gets
its own deadline.  Internal requests are idempotent, so one that fails on a pooled
connection the peer already closed is retried once on a fresh connection.
"""

from __future__ import annotations

import json
from typing import Optional
from urllib.parse import quote

import treq
from hyperlink import EncodedURL
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError
from twisted.internet.defer import TimeoutError as DeferTimeout
from twisted.internet.error import ConnectError, ConnectingCancelledError
from twisted.internet.error import TimeoutError as ConnectTimeout
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    ResponseFailed,
    ResponseNeverReceived,
    _HTTP11ClientFactory,
)

from gossipdht.core.address import Address
from gossipdht.core.errors import PeerError
from gossipdht.net.idempotent import once_more

#: What a transfers report holds at least.
TRANSFERS_FIELDS = {"node", "ring", "settled", "sending", "receiving", "waiting"}
#: Below twisted.web's 60 s idle timeout, so the client closes idle connections first.
IDLE_SECONDS = 50


class _PlainURL(EncodedURL):
    """An ASCII URL that treq must send as it is.

    hyperlink's ``to_uri()`` runs IPv6 literals such as ``::1`` through IDNA and fails
    (python-hyper/hyperlink#68 and #188, open); the URLs built here are plain ASCII
    already, so there is nothing to convert."""

    def to_uri(self) -> "EncodedURL":
        return self


class _QuietFactory(_HTTP11ClientFactory):
    """Without a log line for every connection the pool opens and closes."""

    noisy = False


class PeerClient:
    """HTTP requests to other nodes' APIs over one connection pool, each with a deadline."""

    def __init__(self, reactor, token: Optional[bytes] = None) -> None:
        self._reactor = reactor
        # Sent to every peer when the nodes need API tokens (gossipdht.web.tokens).
        self._headers = None if token is None else {b"authorization": [b"Bearer " + token]}
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool._factory = _QuietFactory
        self._pool.maxPersistentPerHost = 8
        self._pool.cachedConnectionTimeout = IDLE_SECONDS
        self._http = HTTPClient(Agent(reactor, pool=self._pool, connectTimeout=5))

    async def request(self, method: str, address: tuple[str, int], path: str, timeout: float,
                      body: Optional[bytes] = None) -> tuple[int, bytes]:
        """(status, body) of one request to the peer's API."""
        url = _PlainURL.from_text(f"http://{Address(*address)}{path}")

        async def attempt() -> tuple[int, bytes]:
            response = await self._http.request(method, url, data=body, timeout=timeout, headers=self._headers)
            return response.code, await treq.content(response).addTimeout(timeout, self._reactor)
        try:
            return await once_more(attempt, _closed_before_the_answer)
        except ResponseNeverReceived as e:
            if _timed_out(e):
                raise PeerError(f"{Address(*address)} timed out", timed_out=True) from None
            raise PeerError(f"{Address(*address)} closed the connection") from None
        except (CancelledError, DeferTimeout, ConnectTimeout, ConnectingCancelledError):
            # The last: the timeout ended a connection attempt that got no answer.
            raise PeerError(f"{Address(*address)} timed out", timed_out=True) from None
        except (ConnectError, ResponseFailed) as e:
            # ConnectError says what happened ("Connection was refused by other side: 111: ...").
            reason = str(e).rstrip(".") if isinstance(e, ConnectError) else type(e).__name__
            raise PeerError(f"{Address(*address)}: {reason}") from None

    async def push_pull(self, address: tuple[str, int], state: bytes, timeout: float) -> bytes:
        status, body = await self.request("POST", address, "/internal/pushpull", timeout, state)
        if status != 200:
            raise PeerError(body.decode("utf-8", "replace").strip(), status=status)
        return body

    async def ping(self, address: tuple[str, int], name: str, timeout: float) -> bool:
        status, _ = await self.request("GET", address, "/internal/ping/" + quote(name, safe=""), timeout)
        return status == 200

    async def peers(self, address: tuple[str, int], timeout: float) -> list[str]:
        status, body = await self.request("GET", address, "/dht/peers", timeout)
        if status != 200:
            raise PeerError(f"{Address(*address)} answered {status}", status=status)
        return body.decode().split("\r\n")

    async def transfers(self, address: tuple[str, int], timeout: float) -> dict:
        """The member's own transfers report (``GET /dht/transfers`` as JSON)."""
        status, body = await self.request("GET", address, "/dht/transfers?format=json", timeout)
        if status != 200:
            raise PeerError(f"{Address(*address)} answered {status}", status=status)
        try:
            report = json.loads(body)
        except ValueError:
            report = None
        if not isinstance(report, dict) or not TRANSFERS_FIELDS <= report.keys():
            raise PeerError(f"{Address(*address)} sent a bad transfers report")
        return report

    def close(self):
        return self._pool.closeCachedConnections()


def _timed_out(error: ResponseNeverReceived) -> bool:
    return any(reason.check(CancelledError, DeferTimeout) for reason in error.reasons)


def _closed_before_the_answer(error: Exception) -> bool:
    """A pooled connection the peer had closed: the request never got an answer."""
    return isinstance(error, ResponseNeverReceived) and not _timed_out(error)
