"""Certificates for the embedded nats-server's TLS (issue #16): a CA made once per state folder,
whose certificate pods get (PIPELINE_NATS_CA), and a server certificate it signs for the names pods
connect to. Made with the `cryptography` package; private keys are written 0600."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from infra.nats_tls import is_loopback

CA_DAYS, SERVER_DAYS = 3650, 397
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class ServerTls:
    """A CA (its certificate goes to pods) and a server certificate it signed for `hosts`."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def ca_pem(self) -> str:
        return self.ca_file.read_text()

    def config_block(self) -> str:
        """nats-server configuration: TLS offered to every client, required by none (the control plane
        connects in plain text on loopback); pods start TLS at once (`handshake_first: auto`)."""
        return (f'tls {{\n  cert_file: "{self.cert_file}"\n  key_file: "{self.key_file}"\n'
                "  handshake_first: auto\n}\nallow_non_tls: true\n")


def pod_listener(pod_nats_url: str | None, listen: str | None, store: Path) -> dict[str, Any]:
    """How the embedded nats-server listens for pods (EmbeddedNats fields): nothing to change while pods
    connect over loopback (the local provider); for pods elsewhere (PIPELINE_AGENT_NATS_URL names another
    machine) every interface on that URL's port, or PIPELINE_NATS_LISTEN, and TLS with a certificate
    for that name from our CA (`store/tls`, whose ca.pem pods get)."""
    parts = urlsplit(pod_nats_url) if pod_nats_url else None
    remote = parts is not None and not is_loopback(parts.hostname)
    if not remote and not listen and not (parts is not None and parts.scheme == "tls"):
        return {}
    default = f"{'0.0.0.0' if remote else '127.0.0.1'}:{parts.port if parts and parts.port else 4222}"
    host, _, port = (listen or default).rpartition(":")
    names = list(dict.fromkeys([*([parts.hostname] if parts and parts.hostname else []), "localhost", "127.0.0.1"]))
    tls = ensure_server_tls(store / "tls", names) if parts is not None and (remote or parts.scheme == "tls") else None
    return {"host": host.strip("[]"), "listen_port": int(port), "tls": tls}


def ensure_server_tls(directory: Path, hosts: list[str]) -> ServerTls:
    """The CA (made once, kept) and a server certificate naming `hosts` (made again when the hosts
    change or it nears its end). Private keys are written 0600."""
    directory.mkdir(parents=True, exist_ok=True)
    files = ServerTls(directory / "ca.pem", directory / "server-cert.pem", directory / "server-key.pem")
    ca_key_file = directory / "ca-key.pem"
    if not (files.ca_file.exists() and ca_key_file.exists()):
        new_key = ec.generate_private_key(ec.SECP256R1())
        _write(ca_key_file, _private_pem(new_key), secret=True)
        _write(files.ca_file, _ca_certificate(new_key).public_bytes(serialization.Encoding.PEM))
        files.cert_file.unlink(missing_ok=True)  # signed by a CA that is gone
    if not _server_certificate_current(files.cert_file, hosts):
        ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)  # ours: made above
        ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        _write(files.key_file, _private_pem(key), secret=True)
        _write(files.cert_file, _server_certificate(ca, ca_key, key, hosts).public_bytes(serialization.Encoding.PEM))
    return files


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "LoRA Pipeline"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "LoRA Pipeline NATS CA")])
    now = _now()
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))


def _server_certificate(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, key: ec.EllipticCurvePrivateKey,
                        hosts: list[str]) -> x509.Certificate:
    now = _now()
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))


def _server_certificate_current(path: Path, hosts: list[str]) -> bool:
    if not path.exists():
        return False
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(names) == {_general_name(h) for h in hosts} and cert.not_valid_after_utc - _now() > RENEW_BEFORE


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, secret: bool = False) -> None:
    part = path.with_name(path.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    part.replace(path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
