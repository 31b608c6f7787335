"""TLS between nodes (gossipdht.net.tls): ``RpcClient`` to an ``RpcResource`` served on
an ``ssl:`` endpoint in the test process, with and without client certificates."""

from __future__ import annotations

import http.client
import ssl

import pytest
import pytest_twisted
from tls import cluster_pki

from gossipdht.core.errors import PeerError
from gossipdht.net.rpc import PROTOCOL, RpcClient, RpcResource, max_frame_bytes
from gossipdht.net.tls import REFUSAL, NodeTLS


@pytest.fixture
def pki(tmp_path):
    return cluster_pki(tmp_path)


@pytest.fixture
def serve(pki):
    """``serve(tls=None)``: the port of an ``RpcResource`` that echoes, on the server
    certificate's ``ssl:`` endpoint; with ``tls``, verifying clients and admitting as it says."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString
    from twisted.web.server import Site

    ports = []

    def start(tls: NodeTLS | None = None) -> int:
        endpoint = serverFromString(reactor, pki.listen())
        if tls is not None:
            endpoint = tls.verifying_clients(endpoint)
        resource = RpcResource({"echo": lambda body: body}, max_frame_bytes(1000), admit=tls.admit if tls else None)
        listening = []
        endpoint.listen(Site(resource)).addCallback(listening.append)  # TLS listens at once
        ports.append(listening[0])
        return listening[0].getHost().port

    yield start
    for port in ports:
        pytest_twisted.blockon(port.stopListening())


@pytest.fixture
def client():
    """``client(tls)``: an RpcClient that connects as ``tls`` says, closed after the test."""
    from twisted.internet import reactor

    clients = []

    def make(tls: NodeTLS) -> RpcClient:
        clients.append(RpcClient(reactor, max_frame_bytes(1000), endpoint=lambda host, port: tls.client_endpoint(reactor, host, port)))
        return clients[-1]

    yield make
    for made in clients:
        made.close()


def node_tls(pki, ca="ca", client=None) -> NodeTLS:
    """The NodeTLS of the files of ``pki``: the CA named (None: the platform's), and a client certificate."""
    ca_file = getattr(pki, ca) if ca else None
    key, cert = getattr(pki, client) if client else (None, None)
    return NodeTLS.from_files(*(str(path) if path else None for path in (ca_file, cert, key)))


async def refused(call) -> PeerError:
    with pytest.raises(PeerError) as caught:
        await call
    return caught.value


@pytest_twisted.ensureDeferred
async def test_a_client_that_trusts_the_ca_calls_over_tls(pki, serve, client):
    port = serve()
    assert await client(node_tls(pki)).call(("127.0.0.1", port), "echo", b"over tls", 5) == b"over tls"


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("trusted", ["foreign_ca", None])
async def test_a_client_that_does_not_trust_the_servers_ca_cannot_connect(pki, serve, client, trusted):
    port = serve()
    error = await refused(client(node_tls(pki, trusted)).call(("127.0.0.1", port), "echo", b"x", 5))
    assert "certificate verify failed" in str(error)


@pytest_twisted.ensureDeferred
async def test_with_mutual_tls_only_a_client_certificate_of_the_ca_is_admitted(pki, serve, client):
    port = serve(node_tls(pki, client="client"))
    address = ("127.0.0.1", port)
    assert await client(node_tls(pki, client="client")).call(address, "echo", b"mutual", 5) == b"mutual"
    # No certificate: the TLS handshake is fine, the upgrade refused with its line.
    anonymous = await refused(client(node_tls(pki)).call(address, "echo", b"x", 5))
    assert anonymous.status == 403 and str(anonymous).endswith(REFUSAL)
    # A certificate of another CA: the server ends the handshake.
    foreign = await refused(client(node_tls(pki, client="foreign_client")).call(address, "echo", b"x", 5))
    assert "unknown ca" in str(foreign)


def upgrade(port: int, ca) -> tuple[int, bytes]:
    """Status and body of an HTTPS request for the RPC upgrade, without a client certificate."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ssl.create_default_context(cafile=str(ca)))
    try:
        connection.request("GET", "/internal/rpc", headers={"Connection": "Upgrade", "Upgrade": PROTOCOL.decode()})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest_twisted.ensureDeferred
async def test_the_refusal_without_a_client_certificate_is_a_403_line(pki, serve):
    from twisted.internet.threads import deferToThread

    port = serve(node_tls(pki, client="client"))
    assert await deferToThread(upgrade, port, pki.ca) == (403, REFUSAL.encode() + b"\n")


def test_verifying_clients_keeps_the_certificate_and_key_of_the_ssl_endpoint_string(pki):
    """verifying_clients reads an attribute of Twisted's SSL4ServerEndpoint that Twisted does
    not document: this breaks first if Twisted changes it."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString
    from twisted.internet.ssl import Certificate, CertificateOptions

    endpoint = serverFromString(reactor, pki.listen())
    served = endpoint._sslContextFactory
    assert isinstance(served, CertificateOptions)
    assert Certificate(served.certificate).digest() == Certificate.loadPEM(pki.server[1].read_bytes()).digest()
    verifying = node_tls(pki, client="client").verifying_clients(endpoint)._sslContextFactory
    assert (verifying.privateKey, verifying.certificate) == (served.privateKey, served.certificate)
    assert verifying.verify and not verifying.requireCertificate
