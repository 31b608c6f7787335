"""The node's service tree: listening through endpoint strings (TCP, TLS), the port
others are told, and start-up errors that name the option."""

from __future__ import annotations

import http.client
import json
import ssl

import pytest
import pytest_twisted
from conftest import node_config
from tls import self_signed

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


def test_a_busy_endpoint_closes_the_ports_already_open_and_names_listen(started, tmp_path):
    from twisted.internet import reactor

    busy = started().ports[0].getHost().port
    second = NodeService(node_config(tmp_path / "second", storage="memory",
                                     listen=("tcp:0:interface=127.0.0.1", f"tcp:{busy}:interface=127.0.0.1")), reactor)
    with pytest.raises(StartupError) as e:
        second.privilegedStartService()
    assert e.value.code.startswith(f"gossipdht: --listen: cannot listen on tcp:{busy}:interface=127.0.0.1: ")
    assert second.ports == []
