"""The HTTP port's limits through real sockets on loopback: connections and their reserve,
slow headers and bodies, bytes in flight, requests in progress, and how refusals are
counted and logged."""

from __future__ import annotations

import pytest
import pytest_twisted
from conftest import start_node

from gossipdht.net.rpc import PROTOCOL


class Raw:
    """A raw connection to a node: what it sent, and whether it closed."""

    @classmethod
    async def open(cls, node) -> "Raw":
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred
        from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
        from twisted.internet.protocol import Protocol

        class Collect(Protocol):
            def __init__(self):
                self.data = b""
                self.closed = Deferred()
                self.arrived = []

            def dataReceived(self, data):
                self.data += data
                waiting, self.arrived = self.arrived, []
                for arrived in waiting:
                    arrived.callback(None)

            def connectionLost(self, reason):
                self.closed.callback(self.data)

        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", node.ports[0].getHost().port)
        raw = cls()
        raw.protocol = await connectProtocol(endpoint, Collect())
        return raw

    def send(self, data: bytes) -> None:
        self.protocol.transport.write(data)

    async def reply(self, seconds: float = 5.0) -> bytes:
        """Everything received until the node closed the connection, within ``seconds``."""
        from twisted.internet import reactor

        return await self.protocol.closed.addTimeout(seconds, reactor)

    async def some(self, seconds: float = 5.0) -> bytes:
        """What has arrived, once something has, the connection left open."""
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred

        if not self.protocol.data:
            arrived = Deferred()
            self.protocol.arrived.append(arrived)
            await arrived.addTimeout(seconds, reactor)
        return self.protocol.data

    def close(self) -> None:
        self.protocol.transport.abortConnection()


async def until(check, seconds: float = 5.0) -> None:
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    deadline = reactor.seconds() + seconds
    while not check():
        assert reactor.seconds() < deadline, "condition not reached in time"
        await deferLater(reactor, 0.01, lambda: None)


async def sleep(seconds: float) -> None:
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await deferLater(reactor, seconds, lambda: None)


@pytest.fixture
def limited(tmp_path):
    service = start_node(tmp_path, storage="memory", max_value_bytes=200_000, max_connections=5,
                         max_inflight_bytes=300_000, max_requests_in_progress=2, header_timeout=1, body_timeout=1,
                         min_body_rate=2000)
    yield service
    for raw in getattr(service, "raw", []):
        raw.close()
    pytest_twisted.blockon(service.stopService())


async def opened(node, count: int) -> list[Raw]:
    connections = [await Raw.open(node) for _ in range(count)]
    node.raw = getattr(node, "raw", []) + connections
    return connections


def refused(node) -> dict:
    return node.api.node_stats()["http"]["refused"]


UPGRADE = b"GET /internal/rpc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: " + PROTOCOL + b"\r\n\r\n"
HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest_twisted.ensureDeferred
async def test_past_max_connections_only_calls_between_nodes_get_in_then_every_connection_gets_503(limited):
    clients = await opened(limited, 5)
    await until(lambda: limited.limits.slots.held["client"] == 5)
    # On a slot of the reserve, a client's request is refused, and an upgrade to the RPC is served.
    [on_reserve, rpc] = await opened(limited, 2)
    on_reserve.send(HEALTH)
    reply = await on_reserve.reply()
    assert reply.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: 1\r\n" in reply
    rpc.send(UPGRADE)
    assert (await rpc.some()).startswith(b"HTTP/1.1 101 ")
    assert limited.limits.slots.held == {"client": 5, "reserve": 0, "internal": 1}
    # The reserve (64) full too: a new connection is answered at once, before it sends anything.
    await opened(limited, 63)
    await until(lambda: limited.limits.slots.held["reserve"] == 63)
    [over] = await opened(limited, 1)
    assert (await over.reply()).startswith(b"HTTP/1.1 503 ")
    assert refused(limited)["reserve"] == 1 and refused(limited)["connections"] == 1
    # A client slot given back is taken again.
    clients[0].close()
    await until(lambda: limited.limits.slots.held["client"] == 4)
    [again] = await opened(limited, 1)
    again.send(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await again.reply()).startswith(b"HTTP/1.1 200 ")


@pytest_twisted.ensureDeferred
async def test_headers_trickled_past_the_header_timeout_get_408(limited):
    [trickle, silent, prompt] = await opened(limited, 3)
    prompt.send(b"GET /health HTTP/1.1\r\n")
    for byte in b"GET /health HTTP/1.1\r\n" + b"Host: x\r\n" * 3:  # a byte every 0.1 s renewed the idle timeout
        if trickle.protocol.closed.called:
            break
        trickle.send(bytes([byte]))
        await sleep(0.1)
    reply = await trickle.reply()
    assert reply.startswith(b"HTTP/1.1 408 ") and reply.endswith(b"request headers not complete within 1 s\n")
    assert (await silent.reply()).startswith(b"HTTP/1.1 408 ")  # nothing sent at all
    assert (await prompt.reply()).startswith(b"HTTP/1.1 408 ")
    assert refused(limited)["slow_headers"] == 3


@pytest_twisted.ensureDeferred
async def test_a_body_slower_than_the_minimum_rate_gets_408_and_a_faster_one_is_stored(limited):
    slow, fast = await opened(limited, 2)
    head = b"PUT /db/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\nConnection: close\r\n\r\n"
    slow.send(head % b"slow")
    fast.send(head % b"fast")
    # 1 s, plus 1 s for each 2,000 bytes: 500 bytes each 0.1 s keeps up, 50 do not.
    sent = 0
    while not slow.protocol.closed.called:
        assert sent < 20000
        slow.send(b"s" * 50)
        fast.send(b"f" * 500)
        sent += 500
        await sleep(0.1)
    assert (await slow.reply()).startswith(b"HTTP/1.1 408 ")
    assert refused(limited)["slow_body"] == 1
    fast.send(b"f" * (20000 - sent))
    assert (await fast.reply()).startswith(b"HTTP/1.1 204 ")
    assert limited.store.get("slow") is None and limited.store.get("fast").value == b"f" * 20000
    assert limited.limits.budget.used == 0


@pytest_twisted.ensureDeferred
async def test_a_body_that_would_pass_the_inflight_budget_is_refused_before_it_is_read(limited):
    held, declared, chunked = await opened(limited, 3)
    held.send(b"PUT /db/held HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\nConnection: close\r\n\r\n" + b"h" * 1000)
    await until(lambda: limited.limits.budget.used == 200_000)
    declared.send(b"PUT /db/declared HTTP/1.1\r\nHost: x\r\nContent-Length: 150000\r\nExpect: 100-continue\r\n\r\n")
    reply = await declared.reply()
    assert reply.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: 1\r\n" in reply and b"100 Continue" not in reply
    chunk = b"%x\r\n%s\r\n" % (60000, b"c" * 60000)
    chunked.send(b"PUT /db/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2)
    assert (await chunked.reply()).startswith(b"HTTP/1.1 503 ")
    assert refused(limited)["inflight_bytes"] == 2
    held.send(b"h" * 199_000)
    assert (await held.reply()).startswith(b"HTTP/1.1 204 ")
    assert limited.limits.budget.used == 0 and limited.store.get("declared") is None
    assert limited.store.get("chunked") is None


@pytest_twisted.ensureDeferred
async def test_past_max_requests_in_progress_requests_get_503_at_once_and_health_is_served(limited):
    first, second, third, health = await opened(limited, 4)
    for connection, key in ((first, b"a"), (second, b"b")):  # in progress until their bodies are in
        connection.send(b"PUT /db/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n1" % key)
    await until(lambda: limited.limits.in_progress == 2)
    third.send(b"GET /db/a HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = await third.some()
    assert reply.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: 1\r\n" in reply
    assert reply.endswith(b"overloaded; try again later\n") and not third.protocol.closed.called
    health.send(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await health.reply()).startswith(b"HTTP/1.1 200 ")
    first.send(b"2")
    assert (await first.reply()).startswith(b"HTTP/1.1 204 ")
    third.send(b"GET /db/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # the same connection, served
    assert (await third.reply()).endswith(b"\r\n\r\n12")
    assert limited.limits.in_progress == 1 and refused(limited)["overload"] == 1
    stats = limited.api.node_stats()["http"]
    assert stats["max_requests_in_progress"] == 2 and stats["requests_in_progress"] == 1
    body, _ = limited.api.metrics.exposition(None)
    assert b'gossipdht_http_refused_total{reason="overload"} 1.0' in body
    assert b"gossipdht_http_requests_in_progress 1.0" in body


@pytest_twisted.ensureDeferred
async def test_while_overloaded_a_whole_get_is_answered_503_before_it_is_parsed_its_connection_kept(limited,
                                                                                                    monkeypatch):
    first, second, client = await opened(limited, 3)
    for connection, key in ((first, b"a"), (second, b"b")):  # in progress until their bodies are in
        connection.send(b"PUT /db/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n1" % key)
    await until(lambda: limited.limits.in_progress == 2)
    requests = []
    request_class = limited.site.requestFactory
    made = request_class.__init__
    monkeypatch.setattr(request_class, "__init__", lambda self, *args: requests.append(args) or made(self, *args))
    for _ in range(3):  # one connection, one request after another
        before = len(client.protocol.data)
        client.send(b"GET /db/a HTTP/1.1\r\nHost: x\r\n\r\n")
        await until(lambda before=before: len(client.protocol.data) > before and client.protocol.data.endswith(b"later\n"))
    replies = client.protocol.data.split(b"HTTP/1.1 ")[1:]
    assert len(replies) == 3 and all(reply.startswith(b"503 ") and b"\r\nRetry-After: 1\r\n" in reply
                                     and b"\r\nDate: " in reply and b"Connection" not in reply for reply in replies)
    assert requests == [] and not client.protocol.closed.called and refused(limited)["overload"] == 3
    client.send(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # never shed, parsed as usual
    assert (await client.reply()).split(b"HTTP/1.1 ")[-1].startswith(b"200 ") and len(requests) == 1


def test_refusals_are_logged_at_most_once_an_interval():
    from twisted.internet.task import Clock
    from twisted.logger import capturedLogs, formatEvent

    from gossipdht.web.limits import Limits

    clock = Clock()
    limits = Limits(clock, log_interval=10.0)
    with capturedLogs() as events:
        for _ in range(500):
            limits.refused("overload")
        limits.refused("connections")
        assert len(events) == 1 and "1 requests over --max-requests-in-progress" in formatEvent(events[0])
        clock.advance(9.9)
        assert len(events) == 1
        clock.advance(0.1)
        assert len(events) == 2
        assert ("499 requests over --max-requests-in-progress; 1 connections over --max-connections"
                in formatEvent(events[1]))
        clock.advance(100)
        assert len(events) == 2
    assert limits.stats()["refused"]["overload"] == 500
