"""Password hashes (scrypt, from the standard library) and the random secrets of sessions and tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# RFC 7914's interactive parameters: ~50 ms and 16 MiB per hash on our machines.
N, R, P = 2**14, 8, 1
MIN_LENGTH = 12


class WeakPasswordError(ValueError):
    """A password too short to set."""


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"Password must be at least {MIN_LENGTH} characters")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest + "==")
        found = hashlib.scrypt(password.encode(), salt=base64.urlsafe_b64decode(salt + "=="), n=int(n), r=int(r),
                               p=int(p), dklen=len(expected), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


def new_secret(prefix: str = "") -> str:
    """A random secret for a session cookie or an API token (256 bits)."""
    return prefix + secrets.token_urlsafe(32)


def fingerprint(secret: str) -> bytes:
    """What is stored of a secret: its SHA-256 (a leaked table lets no one in)."""
    return hashlib.sha256(secret.encode()).digest()


def generated_password() -> str:
    return secrets.token_urlsafe(15)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
