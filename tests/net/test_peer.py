"""Membership's calls to other nodes (PeerClient) over the internal RPC, against an RPC
server on loopback whose handlers the test scripts."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.web.server import Site

from gossipdht.core.errors import PeerError, Refusal
from gossipdht.net.peer import TRANSFERS_FIELDS, PeerClient
from gossipdht.net.rpc import PATH, RpcClient, RpcResource, max_frame_bytes


@pytest.fixture
def server():
    """(handlers, address): a server of ``handlers``, which the test fills in."""
    from twisted.internet import reactor
    from twisted.web.resource import Resource

    handlers: dict = {}
    root = Resource()
    root.putChild(PATH.strip(b"/").split(b"/")[0], Resource())
    root.children[b"internal"].putChild(b"rpc", RpcResource(handlers, max_frame_bytes(1000)))
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    yield handlers, ("127.0.0.1", port.getHost().port)
    pytest_twisted.blockon(port.stopListening())


@pytest.fixture
def peers():
    from twisted.internet import reactor

    rpc = RpcClient(reactor, max_frame_bytes(1000))
    yield PeerClient(rpc)
    rpc.close()


@pytest_twisted.ensureDeferred
async def test_transfers_report_is_parsed_and_a_bad_one_refused(server, peers):
    handlers, address = server
    report = {field: [] for field in TRANSFERS_FIELDS}
    handlers["transfers"] = lambda body: json.dumps(report).encode()
    assert await peers.transfers(address, 5) == report
    handlers["transfers"] = lambda body: b'{"node": "a"}'
    with pytest.raises(PeerError, match="sent a bad transfers report"):
        await peers.transfers(address, 5)

    def busy(body):
        raise Refusal(503, "busy")
    handlers["transfers"] = busy
    with pytest.raises(PeerError) as e:
        await peers.transfers(address, 5)
    assert e.value.status == 503 and not e.value.timed_out


@pytest_twisted.ensureDeferred
async def test_a_push_pull_refused_carries_the_peers_one_line(server, peers):
    handlers, address = server

    def taken(body):
        raise Refusal(409, "the name x belongs to another member")
    handlers["pushpull"] = taken
    with pytest.raises(PeerError, match="the name x belongs to another member$") as e:
        await peers.push_pull(address, b"state", 5)
    assert e.value.status == 409


@pytest_twisted.ensureDeferred
async def test_a_tcp_probe_of_another_name_is_a_no_not_an_error(server, peers):
    handlers, address = server

    def ping(name):
        if name != b"a":
            raise Refusal(404, f"this node is not {name.decode()}")
        return b""
    handlers["ping"] = ping
    assert await peers.ping(address, "a", 5)
    assert not await peers.ping(address, "b", 5)


@pytest_twisted.ensureDeferred
async def test_a_peer_that_never_answers_times_out(server, peers):
    handlers, address = server
    handlers["peers"] = lambda body: Deferred()
    with pytest.raises(PeerError, match="timed out") as e:
        await peers.peers(address, 0.2)
    assert e.value.timed_out


@pytest_twisted.ensureDeferred
async def test_a_peer_that_is_not_listening_is_refused_not_timed_out(peers):
    from gossipdht.tools.nodeprocess import free_port

    with pytest.raises(PeerError) as e:
        await peers.peers(("127.0.0.1", free_port()), 5)
    assert not e.value.timed_out and "refused" in str(e.value).lower()
