"""Request bodies over the limit are refused from their headers, on the wire."""

from __future__ import annotations

import pytest_twisted


async def exchange(node, request: bytes) -> bytes:
    """Send raw bytes, return everything the server sent until it closed the connection."""
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
    from twisted.internet.protocol import Protocol

    class Collect(Protocol):
        def __init__(self):
            self.data = b""
            self.closed = Deferred()

        def dataReceived(self, data):
            self.data += data

        def connectionLost(self, reason):
            self.closed.callback(self.data)

    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", node.ports[0].getHost().port)
    protocol = await connectProtocol(endpoint, Collect())
    protocol.transport.write(request)
    return await protocol.closed


@pytest_twisted.ensureDeferred
async def test_declared_length_over_limit_is_refused_before_the_body(node):
    # No body is sent at all: the answer can only come from the headers.
    reply = await exchange(
        node,
        b"PUT /db/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n"
        b"Expect: 100-continue\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in reply
    assert reply.endswith(b"request body larger than 1000 bytes\n")
    assert node.store.get("k") is None


@pytest_twisted.ensureDeferred
async def test_chunked_body_is_cut_off_at_the_limit(node):
    chunk = b"%x\r\n%s\r\n" % (600, b"x" * 600)
    # Two chunks pass the limit; the terminating chunk is never sent.
    reply = await exchange(
        node, b"PUT /db/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2
    )
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert node.store.get("k") is None


@pytest_twisted.ensureDeferred
async def test_body_within_limit_is_accepted(node):
    reply = await exchange(
        node,
        b"PUT /db/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n"
        + b"v" * 1000,
    )
    assert reply.startswith(b"HTTP/1.1 204 ")
    assert node.store.get("k").value == b"v" * 1000


@pytest_twisted.ensureDeferred
async def test_head_answers_the_length_of_the_value(node):
    await exchange(
        node, b"PUT /db/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n12345"
    )
    reply = await exchange(node, b"HEAD /db/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"\r\nContent-Length: 5" in head and body == b""


@pytest_twisted.ensureDeferred
async def test_site_sends_prefixed_paths_to_their_resource_with_the_date_of_the_second():
    from types import SimpleNamespace

    from twisted.internet import reactor
    from twisted.internet.task import Clock
    from twisted.web.resource import Resource

    from gossipdht.web.site import Site

    class Text(Resource):
        isLeaf = True

        def __init__(self, text: bytes) -> None:
            super().__init__()
            self.text = text

        def render(self, request):
            return self.text + b" " + request.path

    clock = Clock()
    clock.advance(86400.75)  # 1970-01-02 00:00:00.75
    site = Site(Text(b"rest"), 1024, prefixes={b"/db/": Text(b"key")}, reactor=clock)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")

    async def get(path: bytes) -> bytes:
        return await exchange(SimpleNamespace(ports=[port]), b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path)

    try:
        key = await get(b"/db/k")
        assert key.endswith(b"\r\n\r\nkey /db/k")
        assert b"\r\nDate: Fri, 02 Jan 1970 00:00:00 GMT\r\n" in key
        assert (await get(b"/dbx")).endswith(b"\r\n\r\nrest /dbx")
        clock.advance(0.5)
        assert b"\r\nDate: Fri, 02 Jan 1970 00:00:01 GMT\r\n" in await get(b"/db/k")
    finally:
        await port.stopListening()
