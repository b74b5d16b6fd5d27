"""A self-signed certificate for 127.0.0.1, made on demand, for clients that insist on TLS.

google-genai always connects with ``wss://`` on the Developer API path; it accepts an
EC P-256 certificate with ``subjectAltName IP:127.0.0.1`` and ``basicConstraints CA:TRUE``
(live-protocol.md §9.2). Made with ``cryptography`` when importable, else the ``openssl`` binary.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


class CertificateError(RuntimeError):
    """No way to make a certificate on this machine."""


@dataclass(frozen=True, slots=True)
class CertificatePair:
    """PEM files: the certificate (give it to clients as a CA) and its private key."""

    cert_path: Path
    key_path: Path


def make_certificate(directory: Path, host: str = "127.0.0.1") -> CertificatePair:
    """Write ``cert.pem`` and ``key.pem`` into ``directory`` (reused if both exist)."""
    directory.mkdir(parents=True, exist_ok=True)
    pair = CertificatePair(directory / "cert.pem", directory / "key.pem")
    if pair.cert_path.exists() and pair.key_path.exists():
        return pair
    try:
        _with_cryptography(pair, host)
        log.debug("emulator.tls.certificate", tool="cryptography", path=str(pair.cert_path))
    except ImportError:
        _with_openssl(pair, host)
        log.debug("emulator.tls.certificate", tool="openssl", path=str(pair.cert_path))
    pair.key_path.chmod(0o600)
    return pair


def server_context(pair: CertificatePair) -> ssl.SSLContext:
    """A TLS server context for the pair."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert_path, pair.key_path)
    return context


def client_context(cert_path: Path | str) -> ssl.SSLContext:
    """A client context that trusts the emulator's certificate."""
    return ssl.create_default_context(cafile=str(cert_path))


def _san(host: str) -> tuple[str, bool]:
    try:
        ipaddress.ip_address(host)
        return host, True
    except ValueError:
        return host, False


def _with_cryptography(pair: CertificatePair, host: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    value, is_ip = _san(host)
    alt: x509.GeneralName = (
        x509.IPAddress(ipaddress.ip_address(value)) if is_ip else x509.DNSName(value)
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pair.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pair.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _with_openssl(pair: CertificatePair, host: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertificateError("TLS needs the 'cryptography' package or the 'openssl' binary")
    value, is_ip = _san(host)
    san = f"IP:{value}" if is_ip else f"DNS:{value}"
    command = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-sha256", "-nodes", "-days", "30", "-subj", f"/CN={host}",
        "-addext", f"subjectAltName={san}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-keyout", str(pair.key_path), "-out", str(pair.cert_path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise CertificateError(f"openssl failed: {result.stderr.strip()}")
