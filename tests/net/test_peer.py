"""The client of other nodes' APIs (PeerClient) against a twisted.web site on loopback."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from gossipdht.core.errors import PeerError
from gossipdht.net.peer import TRANSFERS_FIELDS, PeerClient


class Answers(Resource):
    """Answers each path with the (status, body) set for it; ``hang`` never answers."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[bytes, tuple[int, bytes]] = {}
        self.hanging: list = []

    def render(self, request):
        if request.path == b"/hang":
            self.hanging.append(request)
            return NOT_DONE_YET
        status, body = self.answers.get(request.path, (404, b"no such resource\n"))
        request.setResponseCode(status)
        return body


@pytest.fixture
def server():
    from twisted.internet import reactor

    resource = Answers()
    port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")
    yield resource, ("127.0.0.1", port.getHost().port)
    for request in resource.hanging:
        request.channel.transport.loseConnection()
    pytest_twisted.blockon(port.stopListening())


@pytest.fixture
def peers():
    from twisted.internet import reactor

    client = PeerClient(reactor)
    yield client
    pytest_twisted.blockon(client.close())


@pytest_twisted.ensureDeferred
async def test_transfers_report_is_parsed_and_a_bad_one_refused(server, peers):
    resource, address = server
    report = {field: [] for field in TRANSFERS_FIELDS}
    resource.answers[b"/dht/transfers"] = (200, json.dumps(report).encode())
    assert await peers.transfers(address, 5) == report
    resource.answers[b"/dht/transfers"] = (200, b'{"node": "a"}')
    with pytest.raises(PeerError, match="sent a bad transfers report"):
        await peers.transfers(address, 5)
    resource.answers[b"/dht/transfers"] = (503, b"busy\n")
    with pytest.raises(PeerError) as e:
        await peers.transfers(address, 5)
    assert e.value.status == 503 and not e.value.timed_out


@pytest_twisted.ensureDeferred
async def test_a_push_pull_refused_carries_the_peers_one_line(server, peers):
    resource, address = server
    resource.answers[b"/internal/pushpull"] = (409, b"the name x belongs to another member\n")
    with pytest.raises(PeerError, match="^the name x belongs to another member$") as e:
        await peers.push_pull(address, b"state", 5)
    assert e.value.status == 409


@pytest_twisted.ensureDeferred
async def test_a_peer_that_never_answers_times_out(server, peers):
    _, address = server
    with pytest.raises(PeerError, match="timed out") as e:
        await peers.request("GET", address, "/hang", 0.2)
    assert e.value.timed_out


@pytest_twisted.ensureDeferred
async def test_a_peer_that_is_not_listening_is_refused_not_timed_out(peers):
    from gossipdht.tools.nodeprocess import free_port

    with pytest.raises(PeerError) as e:
        await peers.request("GET", ("127.0.0.1", free_port()), "/dht/peers", 5)
    assert not e.value.timed_out and "refused" in str(e.value).lower()
