"""Secrets the control plane must use again but never show again (a webhook endpoint's signing secret),
sealed at rest with AES-256-GCM under the deployment's key.

The key is PIPELINE_WEBHOOK_KEY when set (any text of 32+ characters; its SHA-256 is the key), else
`$PIPELINE_STATE_DIR/webhook.key`, 32 random bytes made by the first process that needs them (0600,
created exclusively, so two processes starting together agree). Processes that do not share a state
directory (containers) must all be given PIPELINE_WEBHOOK_KEY. A sealed value names its key by a short
fingerprint, so a changed key is a clear error rather than garbage."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "webhook.key"
MIN_KEY_TEXT = 32
VERSION = "v1"


class SecretBoxError(Exception):
    """A sealed value that this key cannot open (another key, or damaged), or an unusable key."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SecretBoxError("the sealing key must be 32 bytes")
        self._aead = AESGCM(key)
        self.fingerprint = hashlib.sha256(b"secretbox-fingerprint" + key).hexdigest()[:8]

    def seal(self, plain: str, context: str) -> str:
        """`context` (an endpoint's id) is bound in: a sealed value copied to another row does not open."""
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plain.encode(), context.encode())
        return f"{VERSION}:{self.fingerprint}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, context: str) -> str:
        version, _, rest = sealed.partition(":")
        fingerprint, _, body = rest.partition(":")
        if version != VERSION:
            raise SecretBoxError(f"unknown sealed-secret format {version!r}")
        if fingerprint != self.fingerprint:
            raise SecretBoxError("this secret was sealed under another key (PIPELINE_WEBHOOK_KEY or"
                                 f" {KEY_FILE} changed): rotate the endpoint's secret")
        try:
            raw = base64.b64decode(body, validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (binascii.Error, InvalidTag, ValueError):
            raise SecretBoxError("the sealed secret is damaged: rotate the endpoint's secret") from None


def box_for(configured: str, state_dir: Path) -> SecretBox:
    """The deployment's box: from the configured key text, else the state directory's key file."""
    if configured:
        if len(configured) < MIN_KEY_TEXT:
            raise SecretBoxError(f"PIPELINE_WEBHOOK_KEY must be at least {MIN_KEY_TEXT} characters")
        return SecretBox(hashlib.sha256(configured.encode()).digest())
    return SecretBox(_key_file(state_dir / KEY_FILE))


def _key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != 32:  # another process is writing it this very moment: read again
            key = _settled(path)
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


def _settled(path: Path, tries: int = 50) -> bytes:
    for _ in range(tries):
        key = path.read_bytes()
        if len(key) == 32:
            return key
        time.sleep(0.01)
    raise SecretBoxError(f"{path} does not hold a 32-byte key: remove it (every endpoint's secret must then be"
                         " rotated) or set PIPELINE_WEBHOOK_KEY")
