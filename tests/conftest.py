"""Fixtures: nodes served inside the test process, and real node processes.

The reactor is imported inside fixtures, never at module level: pytest-twisted
installs it first.
"""

from __future__ import annotations

from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Iterator, Optional, Union

import pytest
import pytest_twisted

from gossipdht.node.config import build_config
from gossipdht.tools.nodeprocess import NodeProcess

INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items) -> None:
    # tests/integration/ starts node processes, network namespaces and whole clusters:
    # `make check` leaves them out (-m "not integration"), `make test` runs them too.
    for item in items:
        if INTEGRATION in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


def node_config(tmp_path, **overrides):
    """A valid configuration on ephemeral TCP and UDP ports (0, which only tests may use)."""
    config = build_config({"name": "test-node", "data-dir": str(tmp_path / "data")})
    return replace(config, port=0, gossip_port=0, **overrides)


class HTTP:
    """Raw requests to a node: bytes URLs go out untouched, unlike treq's URL handling."""

    def __init__(self, reactor, port: int, host: str = "127.0.0.1") -> None:
        from twisted.web.client import Agent, HTTPConnectionPool

        self.base = b"http://%s:%d" % ((f"[{host}]" if ":" in host else host).encode(), port)
        self.agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))

    async def request(self, method: bytes, path: bytes, body=None, headers=None):
        """(status, headers, body) of one request."""
        import treq
        from twisted.web.client import FileBodyProducer
        from twisted.web.http_headers import Headers

        producer = None if body is None else FileBodyProducer(BytesIO(body))
        response = await self.agent.request(method, self.base + path, Headers(headers or {}), producer)
        content = await treq.content(response)
        if isinstance(response.length, int) and method != b"HEAD":  # Agent moves Content-Length out of the headers
            response.headers.setRawHeaders(b"content-length", [b"%d" % response.length])
        return response.code, response.headers, content


async def eventually(check, seconds=15.0):
    """Poll ``check`` (async, returns bool) until true, with a deadline."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    deadline = reactor.seconds() + seconds
    while not await check():
        assert reactor.seconds() < deadline, "condition not reached in time"
        await deferLater(reactor, 0.05, lambda: None)


def start_node(tmp_path, **overrides):
    """A started node service of ``node_config(tmp_path, **overrides)``."""
    from twisted.internet import reactor

    from gossipdht.node.service import NodeService

    service = NodeService(node_config(tmp_path, **overrides), reactor)
    service.privilegedStartService()
    service.startService()
    return service


@pytest.fixture(params=["memory", "sqlite"])
def node(request, tmp_path):
    """A started node service, once per storage engine."""
    service = start_node(tmp_path, storage=request.param, max_value_bytes=1000)
    yield service
    pytest_twisted.blockon(service.stopService())


#: Tokens of the ``api_tokens`` file, by role.
TOKENS = {"read": "r3ad-token", "write": "wr1te-token", "admin": "adm1n-t0ken"}


@pytest.fixture
def api_tokens(tmp_path) -> str:
    """The path of an ``--api-tokens`` file of ``TOKENS``."""
    path = tmp_path / "api-tokens"
    path.write_text("".join(f"{role} {token}\n" for role, token in TOKENS.items()))
    return str(path)


@pytest.fixture
def token_node(tmp_path, api_tokens):
    """A started node (memory storage) whose API needs the tokens of ``api_tokens``."""
    service = start_node(tmp_path / "token-node", storage="memory", api_tokens=api_tokens)
    yield service
    pytest_twisted.blockon(service.stopService())


@pytest.fixture
def http(node):
    from twisted.internet import reactor

    return HTTP(reactor, node.ports[0].getHost().port)


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator:
    """A function that makes (and by default starts) nodes; all are stopped afterwards.

    ``node_factory(*args, name="node1", port=None, start=True, data_dir=None)`` returns a
    :class:`NodeProcess` in ``tmp_path/name``.  Cleanup runs even when the test
    fails: every node is stopped with SIGTERM, then SIGKILL if it hangs.
    """
    nodes: list[NodeProcess] = []

    def make(*args: str, name: Optional[str] = None, port: Optional[int] = None,
             start: bool = True, data_dir: Union[str, Path, None] = None) -> NodeProcess:
        node = NodeProcess(tmp_path / (name or f"node{len(nodes) + 1}"), port=port)
        nodes.append(node)
        if start:
            node.start(*args, data_dir=data_dir)
        return node

    try:
        yield make
    finally:
        for node in nodes:
            node.stop(timeout=5.0)
