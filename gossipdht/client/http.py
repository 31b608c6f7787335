"""How the blocking client and every ``gossipdht`` subcommand speak to a node: HTTP or
HTTPS, the Bearer token, kept connections, one-line errors.

urllib3 keeps a pool of connections per node, shared by the threads of a process, and is
thread-safe; its own retries are off, since the client chooses where a failed request goes
next (``gossipdht.client.blocking``).
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Optional

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from gossipdht.core.address import Address

TIMEOUT = 30.0
#: Connections kept per node: as many as the threads that commonly ask it at once.
KEPT_PER_NODE = 32


class RequestError(Exception):
    """The node could not be asked, or answered with an error; the message is one line."""


class Unreachable(RequestError):
    """The node did not answer: refused, timed out, closed, or TLS failed.  The client then
    tries another node."""


class NodeError(RequestError):
    """The node answered with an error status; ``message`` is its one-line answer."""

    def __init__(self, node: str, status: int, message: str) -> None:
        super().__init__(f"{node} answered {status}: {message}")
        self.node, self.status, self.message = node, status, message


@dataclass(frozen=True)
class Response:
    """A node's answer: its status, headers (looked up by their names in lower case) and whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise RequestError(f"the answer is not JSON: {one_line(self.body)}") from None


def pool_manager(cacert: Optional[str]) -> urllib3.PoolManager:
    """Pools of kept connections, one per node, for one trust (None: plain HTTP)."""
    context = None
    if cacert is not None:
        try:
            context = ssl.create_default_context(cafile=cacert)
        except (OSError, ssl.SSLError) as e:
            raise RequestError(f"--cacert {cacert}: {getattr(e, 'strerror', None) or e}") from None
    return urllib3.PoolManager(num_pools=256, maxsize=KEPT_PER_NODE, retries=False, ssl_context=context)


@dataclass(frozen=True)
class Node:
    """A node to ask: its address, the CA to trust for HTTPS (None: plain HTTP), the token."""

    host: str
    port: int
    cacert: Optional[str] = None
    token: Optional[str] = field(default=None, repr=False)
    timeout: float = TIMEOUT
    #: The pools to keep connections in (None: a connection of its own for each request).
    pools: Optional[urllib3.PoolManager] = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return str(Address(self.host, self.port))

    def at(self, host: str, port: int) -> Node:
        """Another member, asked with the same TLS, token and timeout."""
        return replace(self, host=host, port=port)

    def url(self, path: str) -> str:
        return f"{'http' if self.cacert is None else 'https'}://{self}{path}"

    def headers(self, **more: str) -> dict[str, str]:
        """``more`` (underscores for dashes) and the token's Authorization header."""
        headers = {name.replace("_", "-"): value for name, value in more.items()}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict] = None,
                expect: Iterable[int] = (200,)) -> Response:
        """One request (on a kept connection with ``pools``); Unreachable when the node does not answer,
        NodeError unless the status is in ``expect``."""
        manager = self.pools or pool_manager(self.cacert)
        try:
            answer = manager.request(method, self.url(path), body=body, headers={**self.headers(), **(headers or {})},
                                     timeout=self.timeout, redirect=False, preload_content=True)
        except Urllib3Error as e:
            raise Unreachable(f"cannot reach {self}{_reason(e)}") from None
        finally:
            if self.pools is None:
                manager.clear()
        response = Response(answer.status, answer.headers, answer.data)
        if response.status not in expect:
            raise NodeError(str(self), response.status, one_line(response.body) or answer.reason or "")
        return response

    def get_json(self, path: str) -> Any:
        return self.request("GET", path, headers={"Accept": "application/json"}).json()


def _reason(error: BaseException) -> str:
    """Why a request got no answer, from the innermost error urllib3 wrapped."""
    inner = error
    while inner.__cause__ is not None or inner.__context__ is not None:
        inner = inner.__cause__ or inner.__context__
    if isinstance(inner, ssl.SSLError):
        return f" over TLS: {inner.reason or inner}"
    if isinstance(inner, OSError) and inner.errno is not None:
        return f": {inner}"
    return f": {inner or type(inner).__name__}"


def one_line(body: bytes) -> str:
    """A node's error body as one line of text."""
    return " ".join(body.decode("utf-8", "replace").split())
