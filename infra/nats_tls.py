"""TLS for the pods' NATS connections (issue #16). Pods reach NATS over the internet, so their
connection is TLS with the server verified: against the CA generated for the embedded
nats-server, or the operator's (PIPELINE_NATS_CA_FILE), or the system's trust store. A plain-text
connection to anything but this machine is refused, by the agent and by the provisioner.

Pods connect TLS-first (nats-py's `tls_handshake_first`): nats-server otherwise opens in plain text
and upgrades only when the server requires TLS; the embedded server offers TLS beside the control
plane's plain connections on loopback (`allow_non_tls`), which a client that waits for the upgrade
would silently stay plain on. The server's `handshake_first: auto` answers both kinds. The embedded
server's certificates: infra/nats_certs.py (the agent does not need the `cryptography` package)."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class PlainTextNatsError(ValueError):
    """A pod would talk to NATS in plain text over the network; the message says how to fix it."""


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_pod_url(url: str, setting: str = "NATS_URL") -> None:
    """Plain text (`nats://`) is allowed only to this machine; anything else must be `tls://`."""
    parts = urlsplit(url)
    if parts.scheme == "tls" or is_loopback(parts.hostname):
        return
    raise PlainTextNatsError(
        f"{setting} {parts.scheme}://{parts.hostname}:{parts.port or 4222} is plain text to another machine: pods "
        f"connect to NATS with TLS only. Use tls://{parts.hostname}:{parts.port or 4222} (the server verified "
        "against PIPELINE_NATS_CA_FILE, or the CA the embedded server generates; docs/operations.md, \"TLS for pods\")")


def client_options(url: str, ca_pem: str | None) -> dict[str, Any]:
    """What a pod passes to nats.connect: for `tls://`, a context that verifies the server (against
    `ca_pem` when given, else the system's CAs) and a TLS-first handshake."""
    check_pod_url(url)
    if urlsplit(url).scheme != "tls":
        return {}
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return {"tls": context, "tls_handshake_first": True}


def pod_ca_pem(ca_file: Path | None, auth_dir: Path | None) -> str:
    """The CA pods verify NATS with: PIPELINE_NATS_CA_FILE, else the one generated for the embedded
    server (beside its users, `tls/ca.pem`), else none (the system's trust store)."""
    if ca_file is not None:
        return ca_file.read_text()
    generated = auth_dir / "tls" / "ca.pem" if auth_dir is not None else None
    return generated.read_text() if generated is not None and generated.exists() else ""
