"""HTTP calls to a stack started by `start_up`, as a signed-in user: each stack's admin gets an API
token at start; `as_user` makes other people (a member, a manager) with tokens of their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psycopg

from web import users

_stacks: dict[str, str] = {}     # base URL → its database URL
_admins: dict[str, dict[str, str]] = {}


def database_of(state_dir: Path) -> str:
    return f"postgresql://postgres@/pipeline?host={state_dir / 'pg'}"


def authorize(base: str, state_dir: Path) -> None:
    """After `pipeline up` is healthy: an API token for its bootstrapped admin."""
    _stacks[base] = database_of(state_dir)
    _admins[base] = _token(base, "admin", "admin")


def as_user(base: str, name: str, role: str = "member") -> dict[str, str]:
    """Headers of `name` (created with `role` when new) on this stack."""
    return _token(base, name, role)


def _token(base: str, name: str, role: str) -> dict[str, str]:
    with psycopg.connect(_stacks[base], autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM users WHERE name = %s", (name,)).fetchone():
            users.add_user(conn, name, role, "a test password of some length")
        return {"Authorization": f"Bearer {users.create_token(conn, name, 'e2e')}"}


def _headers(url: str, headers: dict[str, str] | None) -> dict[str, str]:
    if headers and any(k.lower() in ("authorization", "x-pipeline-user") for k in headers):
        return headers
    base = next((b for b in _admins if url.startswith(b)), None)
    return {**(_admins[base] if base else {}), **(headers or {})}


def get(url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, headers=_headers(url, headers), **kwargs)


def post(url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, headers=_headers(url, headers), **kwargs)
