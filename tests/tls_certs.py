"""Certificates for TLS tests, made with `cryptography`: a CA, server and client certs, a stranger CA, expired certs."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.timezone.utc)
VALID = (NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=30))
EXPIRED = (NOW - dt.timedelta(days=30), NOW - dt.timedelta(days=1))


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA both sides trust
    server: KeyPair  # for localhost and 127.0.0.1, signed by ca
    client: KeyPair  # signed by ca
    other_ca: Path  # a CA that signed nothing of ours
    expired_server: KeyPair
    expired_client: KeyPair


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> KeyPair:
    pair = KeyPair(folder / f"{stem}.crt", folder / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return pair


def _ca(folder: Path, stem: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name(stem)).issuer_name(_name(stem)).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(VALID[0]).not_valid_after(VALID[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(folder, stem, cert, key)
    return cert, key


def _leaf(folder: Path, stem: str, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], server: bool,
          validity: tuple[dt.datetime, dt.datetime]) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder().subject_name(_name(stem)).issuer_name(ca[0].subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(validity[0]).not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                              else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _write(folder, stem, builder.sign(ca[1], hashes.SHA256()), key)


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca = _ca(folder, "ca")
    _ca(folder, "other-ca")
    return Pki(
        ca=folder / "ca.crt",
        server=_leaf(folder, "server", ca, True, VALID),
        client=_leaf(folder, "client", ca, False, VALID),
        other_ca=folder / "other-ca.crt",
        expired_server=_leaf(folder, "expired-server", ca, True, EXPIRED),
        expired_client=_leaf(folder, "expired-client", ca, False, EXPIRED),
    )
