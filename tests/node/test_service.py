"""The node's service tree: listening through endpoint strings (TCP, TLS), the port
others are told, TLS between nodes, start-up errors that name the option, and API tokens
over real HTTP."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess

import msgpack
import pytest
import pytest_twisted
from conftest import HTTP, TOKENS, node_config, start_node
from tls import cluster_pki, self_signed
from twisted.logger import capturedLogs, formatEvent

from gossipdht.core.errors import PeerError
from gossipdht.net.messages import pack_keys
from gossipdht.net.rpc import PROTOCOL, RpcClient, max_frame_bytes
from gossipdht.net.tls import REFUSAL, NodeTLS
from gossipdht.node.service import NodeService, StartupError


@pytest.fixture
def started(tmp_path):
    """``started(**config)``: a started node (memory storage), stopped after the test."""
    from twisted.internet import reactor

    services = []

    def start(**overrides) -> NodeService:
        service = NodeService(node_config(tmp_path / f"n{len(services)}", storage="memory", **overrides), reactor)
        service.privilegedStartService()
        service.startService()
        services.append(service)
        return service

    yield start
    for service in services:
        pytest_twisted.blockon(service.stopService())


def get(connection: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest_twisted.ensureDeferred
async def test_every_listen_endpoint_serves_and_others_are_told_the_first(started):
    from twisted.internet.threads import deferToThread

    node = started(listen=("tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1"))
    first, second = (port.getHost().port for port in node.ports)
    assert first != second
    for port in (first, second):
        status, body = await deferToThread(get, http.client.HTTPConnection("127.0.0.1", port, timeout=5), "/dht/members")
        assert status == 200
        assert [m["port"] for m in json.loads(body)] == [first]


@pytest_twisted.ensureDeferred
async def test_tls_endpoint_serves_https_to_a_client_that_trusts_the_certificate(started, tmp_path):
    from twisted.internet.threads import deferToThread

    key, cert = self_signed(tmp_path)
    node = started(listen=(f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",))
    port = node.ports[0].getHost().port
    trusting = ssl.create_default_context(cafile=str(cert))
    status, body = await deferToThread(
        get, http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=trusting), "/health")
    assert status == 200, body
    # A client that does not trust it refuses the certificate.
    with pytest.raises(ssl.SSLCertVerificationError):
        await deferToThread(get, http.client.HTTPSConnection("127.0.0.1", port, timeout=5,
                                                             context=ssl.create_default_context()), "/health")


@pytest.mark.parametrize("description, message", [
    ("carrier-pigeon:8080", "--listen: 'carrier-pigeon:8080': Unknown endpoint type: 'carrier-pigeon'"),
    ("ssl:0:privateKey=/nonexistent/key.pem", "--listen: 'ssl:0:privateKey=/nonexistent/key.pem': "),
    ("tcp:0:color=blue", "--listen: 'tcp:0:color=blue': "),
    ("systemd:domain=INET:index=0", "--listen: 'systemd:domain=INET:index=0': no such socket was passed by systemd"),
])
def test_a_bad_endpoint_string_ends_start_up_with_one_line_naming_listen(tmp_path, description, message):
    from twisted.internet import reactor

    with pytest.raises(StartupError) as e:
        NodeService(node_config(tmp_path, storage="memory", listen=(description,)), reactor)
    assert e.value.code.startswith(f"gossipdht: {message}")
    assert "\n" not in e.value.code


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss is not installed (apt-get install iproute2)")
def test_the_default_endpoint_queues_a_thousand_connections_rather_than_twisteds_fifty(started):
    from gossipdht.node.config import LISTEN_BACKLOG

    port = started().ports[0].getHost().port
    [listening] = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                                 check=True).stdout.splitlines()
    assert listening.split()[2] == str(LISTEN_BACKLOG)  # a listening socket's Send-Q: its backlog


def test_a_busy_endpoint_closes_the_ports_already_open_and_names_listen(started, tmp_path):
    from twisted.internet import reactor

    busy = started().ports[0].getHost().port
    second = NodeService(node_config(tmp_path / "second", storage="memory",
                                     listen=("tcp:0:interface=127.0.0.1", f"tcp:{busy}:interface=127.0.0.1")), reactor)
    with pytest.raises(StartupError) as e:
        second.privilegedStartService()
    assert e.value.code.startswith(f"gossipdht: --listen: cannot listen on tcp:{busy}:interface=127.0.0.1: ")
    assert second.ports == []


def bearer(role: str) -> dict:
    return {b"authorization": [b"Bearer " + TOKENS[role].encode()]}


def token_http(node) -> HTTP:
    from twisted.internet import reactor

    return HTTP(reactor, node.ports[0].getHost().port)


@pytest_twisted.ensureDeferred
async def test_with_tokens_a_request_without_a_known_one_is_401_but_health_is_open(token_node):
    http = token_http(token_node)
    for path in (b"/db/k", b"/db", b"/dht/members", b"/dht/leave"):
        status, headers, body = await http.request(b"GET", path)
        assert (status, body) == (401, b"this node needs an API token: send Authorization: Bearer TOKEN\n")
        assert headers.getRawHeaders(b"www-authenticate") == [b'Bearer realm="gossipdht"']
    status, headers, body = await http.request(b"GET", b"/db/k", headers={b"authorization": [b"Bearer n0t-a-token"]})
    assert (status, body) == (401, b"unknown API token\n")
    assert headers.getRawHeaders(b"www-authenticate") == [b'Bearer realm="gossipdht"']
    assert (await http.request(b"GET", b"/health"))[::2] == (200, b"OK\n")
    assert (await http.request(b"HEAD", b"/health"))[0] == 200


@pytest_twisted.ensureDeferred
async def test_a_read_token_reads_and_a_write_token_writes(token_node):
    http = token_http(token_node)
    status, _, body = await http.request(b"PUT", b"/db/k", b"v", headers=bearer("read"))
    assert (status, body) == (403, b"this request needs the write role; the token has the read role\n")
    assert TOKENS["read"].encode() not in body
    assert token_node.store.get("k") is None
    assert (await http.request(b"PUT", b"/db/k", b"v", headers=bearer("write")))[0] in (200, 201, 204)
    assert (await http.request(b"GET", b"/db/k", headers=bearer("read")))[::2] == (200, b"v")
    assert (await http.request(b"DELETE", b"/db/k", headers=bearer("read")))[0] == 403


@pytest_twisted.ensureDeferred
async def test_a_write_token_cannot_join_leave_or_remove_an_admin_token_can(token_node):
    http = token_http(token_node)
    for method, path in ((b"POST", b"/dht/join"), (b"GET", b"/dht/leave"), (b"POST", b"/dht/leave"),
                         (b"POST", b"/dht/remove")):
        status, _, body = await http.request(method, path, b"x", headers=bearer("write"))
        assert (status, body) == (403, b"this request needs the admin role; the token has the write role\n")
    assert (await http.request(b"GET", b"/dht/leave", headers=bearer("admin")))[::2] == (200, b"alone already\n")
    status, _, body = await http.request(b"POST", b"/dht/join", b"not a seed", headers=bearer("admin"))
    assert status == 400 and body.startswith(b"bad join request: ")


def raw_exchange(port: int, request: bytes) -> bytes:
    """Everything the server sends until it closes; a socket timeout if it waits instead."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(4096):
            reply += chunk
        return reply


@pytest_twisted.ensureDeferred
async def test_a_request_without_a_token_is_refused_from_its_headers_before_its_body(token_node):
    from twisted.internet.threads import deferToThread

    # The body is never sent: only an answer from the headers ends the exchange.
    reply = await deferToThread(raw_exchange, token_node.ports[0].getHost().port,
                                b"PUT /db/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b'\r\nWWW-Authenticate: Bearer realm="gossipdht"\r\n' in reply
    assert b"100 Continue" not in reply
    assert token_node.store.get("k") is None


def test_start_up_says_how_many_tokens_each_role_has_and_shows_none(started, api_tokens):
    with capturedLogs() as events:
        started(api_tokens=api_tokens)
    lines = [formatEvent(event) for event in events]
    assert "HTTP requests need an API token (1 read, 1 write, 1 admin); GET /health and calls between nodes do not" in lines
    assert not [line for line in lines for token in TOKENS.values() if token in line]
    with capturedLogs() as events:
        started()
    assert not [event for event in events if "API token" in formatEvent(event)]


def test_a_tokens_file_gone_since_the_configuration_was_read_ends_start_up(tmp_path):
    from twisted.internet import reactor

    with pytest.raises(StartupError) as e:
        NodeService(node_config(tmp_path, storage="memory", api_tokens=str(tmp_path / "gone")), reactor)
    assert e.value.code.startswith(f"gossipdht: --api-tokens: cannot read {tmp_path / 'gone'}: ")


@pytest_twisted.ensureDeferred
async def test_two_nodes_with_tokens_join_and_replicate_between_themselves(started, api_tokens):
    # Joining waits for each to list the other (GET /dht/peers, with the node's own token);
    # replicas go over /internal/rpc, which needs no token.
    a = started(name="a", replicas=2, api_tokens=api_tokens)
    b = started(name="b", replicas=2, api_tokens=api_tokens)
    http_a, http_b = token_http(a), token_http(b)
    seed = b"127.0.0.1:%d" % a.ports[0].getHost().port
    status, _, body = await http_b.request(b"POST", b"/dht/join", seed, headers=bearer("admin"))
    assert status == 200, body
    status, _, body = await http_a.request(b"PUT", b"/db/k?w=2", b"v", headers=bearer("write"))
    assert status in (200, 201, 204), body
    assert a.store.get("k").value == b.store.get("k").value == b"v"
    assert (await http_b.request(b"GET", b"/db/k?r=2", headers=bearer("read")))[::2] == (200, b"v")


def internal_traffic(events) -> list[str]:
    from twisted.logger import formatEvent

    return [formatEvent(e) for e in events if formatEvent(e).startswith("internal traffic between nodes: ")]


def mutual_tls(pki) -> dict:
    """The settings of a node with mutual TLS on its server certificate's endpoint."""
    client_key, client_cert = pki.client
    return dict(listen=(pki.listen(),), tls_ca=str(pki.ca), tls_client_cert=str(client_cert), tls_client_key=str(client_key))


@pytest_twisted.ensureDeferred
async def test_with_mutual_tls_a_node_calls_nodes_with_its_certificate_and_refuses_calls_without_one(started, tmp_path):
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread
    from twisted.logger import capturedLogs

    pki = cluster_pki(tmp_path)
    with capturedLogs() as events:
        node = started(**mutual_tls(pki))
    assert internal_traffic(events) == [f"internal traffic between nodes: mutual TLS, certificates of servers and "
                                        f"clients checked against the CA in {pki.ca}"]
    address = ("127.0.0.1", node.ports[0].getHost().port)
    # The node's own client (the one replicas use) is admitted: TLS, and its certificate.
    assert msgpack.unpackb(await node.rpc.call(address, "read", pack_keys(["absent"]), 5)) == [None]
    anonymous = RpcClient(reactor, max_frame_bytes(1000),
                          endpoint=lambda host, port: NodeTLS.from_files(str(pki.ca)).client_endpoint(reactor, host, port))
    try:
        with pytest.raises(PeerError) as refused:
            await anonymous.call(address, "read", pack_keys(["absent"]), 5)
        assert refused.value.status == 403 and str(refused.value).endswith(REFUSAL)
    finally:
        anonymous.close()

    def upgrade() -> tuple[int, bytes]:
        connection = http.client.HTTPSConnection(*address, timeout=5, context=ssl.create_default_context(cafile=str(pki.ca)))
        connection.request("GET", "/internal/rpc", headers={"Connection": "Upgrade", "Upgrade": PROTOCOL.decode()})
        response = connection.getresponse()
        return response.status, response.read()

    assert await deferToThread(upgrade) == (403, REFUSAL.encode() + b"\n")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest_twisted.ensureDeferred


async def test_curl_with_the_ca_reads_a_node_with_mutual_tls_without_a_client_certificate(started, tmp_path):
    from twisted.internet.threads import deferToThread

    pki = cluster_pki(tmp_path)
    url = f"https://127.0.0.1:{started(**mutual_tls(pki)).ports[0].getHost().port}/health"
    curl = lambda *args: subprocess.run(["curl", "--silent", "--show-error", "--max-time", "10", *args, url],
                                        capture_output=True, timeout=20)
    trusting = await deferToThread(curl, "--cacert", str(pki.ca))
    assert trusting.returncode == 0, trusting.stderr
    assert trusting.stdout.strip() == b"OK"
    untrusting = await deferToThread(curl)
    assert untrusting.returncode == 60, untrusting.stderr  # "SSL certificate problem"


def test_internal_traffic_is_tls_when_the_endpoint_others_reach_is_ssl(started, tmp_path):
    from twisted.logger import capturedLogs

    key, cert = self_signed(tmp_path)
    with capturedLogs() as events:
        plain = started(listen=("unix:" + str(tmp_path / "n.sock"), "tcp:0:interface=127.0.0.1",
                                f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"))
        tls = started(listen=("unix:" + str(tmp_path / "t.sock"), f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"),
                      tls_ca=str(cert))
    assert (plain.internal_tls, tls.internal_tls) == (False, True)
    assert internal_traffic(events) == [
        "internal traffic between nodes: plaintext, as the first --listen endpoint with a port is not ssl:",
        f"internal traffic between nodes: TLS, servers' certificates checked against the CA in {cert}"]


def test_tls_ca_without_an_ssl_endpoint_ends_start_up_naming_it(tmp_path):
    from twisted.internet import reactor

    key, cert = self_signed(tmp_path)
    node = NodeService(node_config(tmp_path, storage="memory", tls_ca=str(cert),
                                   listen=("tcp:0:interface=127.0.0.1", f"ssl:0:privateKey={key}:certKey={cert}")), reactor)
    with pytest.raises(StartupError) as e:
        node.privilegedStartService()
    assert e.value.code == ("gossipdht: --tls-ca: nodes speak TLS to each other only when the first --listen "
                            "endpoint with a port is ssl:")
    assert node.ports == []


@pytest_twisted.ensureDeferred
async def test_three_nodes_with_mutual_tls_join_and_replicate_and_one_without_a_certificate_cannot_join(
        started, tmp_path):
    from gossipdht.core.address import Address
    from gossipdht.net.cluster import ClusterError

    pki = cluster_pki(tmp_path)
    a, b, c = (started(name=name, **mutual_tls(pki)) for name in "abc")
    seed = [Address("127.0.0.1", a.ports[0].getHost().port)]
    for node in (b, c):
        await node.cluster.join(seed)
    assert a.cluster.peers() == ["a", "b", "c"]
    await a.coordinator.put("k", b"over tls", "text/plain", 3)
    assert [node.store.get("k").value for node in (a, b, c)] == [b"over tls"] * 3
    assert (await c.coordinator.get("k", 3)).value == b"over tls"
    anonymous = started(name="d", listen=(pki.listen(),), tls_ca=str(pki.ca))
    with pytest.raises(ClusterError) as refused:
        await anonymous.cluster.join(seed)
    assert refused.value.code == 403 and str(refused.value).endswith(REFUSAL)
    assert a.cluster.peers() == ["a", "b", "c"]


@pytest_twisted.ensureDeferred
async def test_a_node_with_sync_full_commits_with_synchronous_full(tmp_path):
    from twisted.internet import reactor

    service = start_node(tmp_path, storage="sqlite", sync="full")
    try:
        http = HTTP(reactor, service.ports[0].getHost().port)
        assert (await http.request(b"PUT", b"/db/k", b"v"))[0] == 204
        assert (await http.request(b"GET", b"/db/k"))[::2] == (200, b"v")
        assert service.store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        await service.stopService()
