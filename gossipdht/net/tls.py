"""How nodes speak TLS to each other: the CA they trust, and for mutual TLS the client
certificate each shows and the check of the others'.

A node's API endpoint is an ``ssl:`` endpoint string (its server certificate and key);
peers are addressed by IP, so server certificates carry the node's IP address as a
subject alternative name.  With a client certificate (mutual TLS), the server asks every
client for one and verifies what it gets against the CA, but does not insist at the TLS
level: the same port serves public clients such as ``curl --cacert``, who have none.
The internal RPC is refused (403) without a verified one instead.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from OpenSSL import SSL
from twisted.internet.endpoints import SSL4ServerEndpoint, wrapClientTLS
from twisted.internet.interfaces import ISSLTransport, IStreamClientEndpoint
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    KeyPair,
    PrivateCertificate,
    optionsForClientTLS,
    trustRootFromCertificates,
)
from twisted.web.iweb import IRequest

from gossipdht.net.rpc import tcp_endpoint

REFUSAL = "internal traffic needs a client certificate from the cluster's CA (--tls-ca)"
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


class TLSFileError(ValueError):
    """A certificate or key file that cannot be used; ``argument`` names the one of
    ``NodeTLS.from_files`` at fault, the message says why on one line."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


class NodeTLS:
    """The CA a node trusts (the platform's when none) and its client certificate, if
    any: the client side of connections to peers and, with a client certificate, the
    check of theirs."""

    def __init__(self, ca: Sequence[Certificate] = (), client: Optional[PrivateCertificate] = None,
                 ca_file: Optional[str] = None) -> None:
        if client is not None and not ca:
            raise ValueError("mutual TLS needs the CA that signed the nodes' certificates")
        self.ca = list(ca)
        self.client = client
        self.ca_file = ca_file

    @classmethod
    def from_files(cls, ca: Optional[str], client_cert: Optional[str] = None,
                   client_key: Optional[str] = None) -> NodeTLS:
        """Read PEM files: the CA's certificates (one or more), the client certificate
        and its key; TLSFileError names the argument whose file cannot be used."""
        certificates = _read_certificates("ca", ca) if ca else []
        client = None
        if client_cert is not None and client_key is not None:
            certificate = _read_certificates("client_cert", client_cert)[0]
            key_pem = _read("client_key", client_key)
            try:
                key = KeyPair.load(key_pem, SSL.FILETYPE_PEM)
            except Exception:  # pyOpenSSL raises its own Error, or ValueError
                raise TLSFileError("client_key", f"{client_key} holds no PEM private key") from None
            try:
                client = PrivateCertificate.fromCertificateAndKeyPair(certificate, key)
            except Exception:  # VerifyError
                raise TLSFileError("client_key", f"the key in {client_key} is not the one of the "
                                                 f"certificate in {client_cert}") from None
        return cls(certificates, client, ca)

    @property
    def mutual(self) -> bool:
        """Whether this node shows a client certificate and asks the others for theirs."""
        return self.client is not None

    def describe(self) -> str:
        """The trust, for the start-up log."""
        trusted = f"the CA in {self.ca_file}" if self.ca else "the platform's CAs"
        if self.mutual:
            return f"mutual TLS, certificates of servers and clients checked against {trusted}"
        return f"TLS, servers' certificates checked against {trusted}"

    def client_endpoint(self, reactor, host: str, port: int) -> IStreamClientEndpoint:
        """A TLS connection to the peer at ``host`` (an IP address its certificate names)."""
        options = optionsForClientTLS(
            host, trustRoot=trustRootFromCertificates(self.ca) if self.ca else None,
            clientCertificate=self.client)
        return wrapClientTLS(options, tcp_endpoint(reactor, host, port))

    def verifying_clients(self, endpoint: SSL4ServerEndpoint) -> SSL4ServerEndpoint:
        """``endpoint`` (made from an ``ssl:`` string), asking clients for a certificate and
        verifying the ones they show against the CA, yet serving those who show none."""
        # The ssl: endpoint string has no option to verify clients, and SSL4ServerEndpoint
        # keeps the options it built from privateKey= and certKey= (and extraCertChain=,
        # dhParameters=, sslmethod=) in an attribute of its own: read and replaced here
        # only; tests/net/test_tls.py breaks if Twisted changes it.
        served: CertificateOptions = endpoint._sslContextFactory
        method = {} if served.method == SSL.TLS_METHOD else {"method": served.method}  # sslmethod= given
        endpoint._sslContextFactory = CertificateOptions(
            privateKey=served.privateKey, certificate=served.certificate, extraCertChain=served.extraCertChain,
            dhParameters=served.dhParameters, verify=True, caCerts=[c.original for c in self.ca],
            requireCertificate=False, **method)
        return endpoint

    def admit(self, request: IRequest) -> Optional[str]:
        """For ``RpcResource``: None when the client showed a certificate, which the
        endpoints made by ``verifying_clients`` only accept from the CA; else the refusal."""
        transport = ISSLTransport(request.transport, None)
        if transport is None or transport.getPeerCertificate() is None:
            return REFUSAL
        return None


def _read(argument: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TLSFileError(argument, f"cannot read {path}: {e.strerror}") from None


def _read_certificates(argument: str, path: str) -> list[Certificate]:
    """Every PEM certificate in the file (a CA file may hold several, as during a rotation)."""
    found = _PEM_CERTIFICATE.findall(_read(argument, path))
    try:
        certificates = [Certificate.loadPEM(pem) for pem in found]
    except Exception as e:  # pyOpenSSL's Error
        raise TLSFileError(argument, f"{path} holds a PEM certificate that cannot be parsed: {e}") from None
    if not certificates:
        raise TLSFileError(argument, f"{path} holds no PEM certificate")
    return certificates
