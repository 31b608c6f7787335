"""How every ``gossipdht`` subcommand speaks to a node: HTTP or HTTPS, the Bearer token,
one-line errors.  Blocking ``http.client``: the commands are plain clients."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Optional

from gossipdht.core.address import Address

TIMEOUT = 30.0


class RequestError(Exception):
    """The node could not be asked, or answered with an error; the message is one line."""


@dataclass(frozen=True)
class Response:
    """A node's answer: its status, headers and whole body."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise RequestError(f"the answer is not JSON: {one_line(self.body)}") from None


@dataclass(frozen=True)
class Node:
    """A node to ask: its address, the CA to trust for HTTPS (None: plain HTTP), the token."""

    host: str
    port: int
    cacert: Optional[str] = None
    token: Optional[str] = field(default=None, repr=False)
    timeout: float = TIMEOUT

    def __str__(self) -> str:
        return str(Address(self.host, self.port))

    def at(self, host: str, port: int) -> Node:
        """Another member, asked with the same TLS, token and timeout."""
        return replace(self, host=host, port=port)

    def connect(self) -> http.client.HTTPConnection:
        """A new connection to the node, HTTPS when a CA is given (shared with ``load``)."""
        if self.cacert is None:
            return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            context = ssl.create_default_context(cafile=self.cacert)
        except (OSError, ssl.SSLError) as e:
            raise RequestError(f"--cacert {self.cacert}: {getattr(e, 'strerror', None) or e}") from None
        return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=context)

    def headers(self, **more: str) -> dict[str, str]:
        """``more`` (underscores for dashes) and the token's Authorization header."""
        headers = {name.replace("_", "-"): value for name, value in more.items()}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict] = None,
                expect: Iterable[int] = (200,)) -> Response:
        """One request on a connection of its own; RequestError unless the status is in ``expect``."""
        connection = self.connect()
        try:
            connection.request(method, path, body, {**self.headers(), **(headers or {})})
            answer = connection.getresponse()
            response = Response(answer.status, answer.headers, answer.read())
        except ssl.SSLError as e:
            raise RequestError(f"cannot reach {self} over TLS: {e.reason or e}") from None
        except (OSError, http.client.HTTPException) as e:
            raise RequestError(f"cannot reach {self}: {e or type(e).__name__}") from None
        finally:
            connection.close()
        if response.status not in expect:
            raise RequestError(f"{self} answered {response.status}: {one_line(response.body) or answer.reason}")
        return response

    def get_json(self, path: str) -> Any:
        return self.request("GET", path, headers={"Accept": "application/json"}).json()


def one_line(body: bytes) -> str:
    """A node's error body as one line of text."""
    return " ".join(body.decode("utf-8", "replace").split())
