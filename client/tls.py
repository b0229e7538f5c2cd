"""TLS files of a gRPC channel, checked before the first call.

gRPC reads certificate files lazily and reports problems as a bare UNAVAILABLE at the first call
(and a server that refuses a client certificate just closes the socket), so a missing file, a key
that does not match its certificate, or an expired certificate is caught here instead, as a
`TLSError` that names the file.

The command-line options of a caller's TLS files live here too, so every command that calls a server
(`focoos predict --url`, `focoos bench`, `focoos swap`) spells them alike.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ssl
from pathlib import Path

from .errors import TLSError


def _pem(path: str | Path, role: str) -> bytes:
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TLSError(f"{role} {path}: cannot be read ({exc.strerror or exc})") from None
    if b"-----BEGIN" not in data:
        raise TLSError(f"{role} {path}: not a PEM file")
    return data


def check_certificate(path: str | Path, role: str, now: dt.datetime | None = None) -> None:
    """Every certificate in the PEM file `path` parses and is valid now (not expired, not yet valid)."""
    from cryptography import x509

    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        certificates = x509.load_pem_x509_certificates(_pem(path, role))
    except ValueError as exc:
        raise TLSError(f"{role} {path}: not a PEM certificate ({exc})") from None
    for certificate in certificates:
        subject = certificate.subject.rfc4514_string()
        if certificate.not_valid_after_utc < now:
            raise TLSError(f"{role} {path} ({subject}) expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
        if certificate.not_valid_before_utc > now:
            raise TLSError(f"{role} {path} ({subject}) is not valid before "
                           f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")


def check_key_pair(certificate: str | Path, key: str | Path, role: str) -> None:
    """The private key belongs to the certificate (OpenSSL's own check, through the ssl module)."""
    _pem(key, f"{role} key")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(str(certificate), str(key))
    except ssl.SSLError as exc:
        raise TLSError(f"{role} key {key} does not match certificate {certificate} ({exc.reason or exc})") from None


def check_tls_files(
    root_certificates: str | Path | None, certificate_chain: str | Path | None, private_key: str | Path | None,
    side: str,
) -> None:
    """One side's TLS files: the CA bundle it trusts, and its own certificate with its key (both or neither)."""
    if (certificate_chain is None) != (private_key is None):
        raise TLSError(f"{side}: a certificate needs its private key and a key its certificate (got one of them)")
    if root_certificates is not None:
        check_certificate(root_certificates, f"{side} CA bundle")
    if certificate_chain is not None:
        check_certificate(certificate_chain, f"{side} certificate")
        check_key_pair(certificate_chain, private_key, f"{side} certificate")



def add_client_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """--tls-ca/--tls-cert/--tls-key on a command that calls a server; none given: a plaintext channel."""
    parser.add_argument("--tls-ca", default=None, metavar="PEM", help="CA that signed the server's certificate (TLS)")
    parser.add_argument("--tls-cert", default=None, metavar="PEM", help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", default=None, metavar="PEM", help="key of the client certificate (mutual TLS)")


def client_tls_fields(args: argparse.Namespace) -> dict[str, str]:
    """The ClientOptions fields those options gave (empty when none was: a plaintext channel)."""
    fields = {"root_certificates": args.tls_ca, "certificate_chain": args.tls_cert, "private_key": args.tls_key}
    return {key: value for key, value in fields.items() if value is not None}
