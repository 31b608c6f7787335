"""The files of a cluster's TLS for the tests: its CA with a server and a client
certificate, beside a foreign CA's (the certificates: ``gossipdht.tools.certificates``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gossipdht.tools.certificates import authority, self_signed

__all__ = ["ClusterPKI", "cluster_pki", "self_signed"]


@dataclass(frozen=True)
class ClusterPKI:
    """The files of a cluster's TLS: its CA, a node's server certificate (IP SAN
    127.0.0.1) and client certificate, and a client certificate of a foreign CA."""

    ca: Path
    server: tuple[Path, Path]
    client: tuple[Path, Path]
    foreign_ca: Path
    foreign_client: tuple[Path, Path]

    def listen(self, port: int = 0) -> str:
        """The ``ssl:`` endpoint string of the server certificate on loopback."""
        key, cert = self.server
        return f"ssl:{port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"


def cluster_pki(directory: Path) -> ClusterPKI:
    """A new ``ClusterPKI`` in ``directory``."""
    ca, foreign = authority(directory, "ca"), authority(directory, "foreign-ca")
    return ClusterPKI(ca.cert, ca.issue(directory, "server", "127.0.0.1"), ca.issue(directory, "client"),
                      foreign.cert, foreign.issue(directory, "foreign-client"))
