"""Certificates as PEM files: a CA and the certificates it issues, with IP subject
alternative names since nodes are addressed by IP (the TLS benchmark and tests use them)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """(key.pem, cert.pem) in ``directory``: a certificate for ``host`` that is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _write(directory, "", _certificate(_name(host), key.public_key(), _name(host), key, ca=True, host=host), key)


@dataclass(frozen=True)
class Authority:
    """A CA: its certificate file, and what it signs with."""

    cert: Path
    key: ec.EllipticCurvePrivateKey
    name: x509.Name

    def issue(self, directory: Path, stem: str, host: Optional[str] = None) -> tuple[Path, Path]:
        """(STEM-key.pem, STEM-cert.pem): a server certificate for the IP ``host`` (also good
        as a client one), or a client certificate without it."""
        key = ec.generate_private_key(ec.SECP256R1())
        return _write(directory, f"{stem}-", _certificate(_name(stem), key.public_key(), self.name, self.key,
                                                          host=host), key)


def authority(directory: Path, stem: str = "ca") -> Authority:
    """A new CA whose certificate is ``STEM-cert.pem`` in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"gossipdht {stem}")
    _, cert = _write(directory, f"{stem}-", _certificate(name, key.public_key(), name, key, ca=True), key)
    return Authority(cert, key, name)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: x509.Name, public_key, issuer: x509.Name, signer, ca: bool = False,
                 host: Optional[str] = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    )
    if host is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                                        critical=False)
    if not ca:
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if host is not None else [
            ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write(directory: Path, prefix: str, cert: x509.Certificate, key) -> tuple[Path, Path]:
    key_path, cert_path = directory / f"{prefix}key.pem", directory / f"{prefix}cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path
