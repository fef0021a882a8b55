"""Where the client finds the API and its token: PIPELINE_API_URL and PIPELINE_API_TOKEN, else what
`pipeline login` stored in the user's config directory (`config.json`, readable by its owner only)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import click

ENV_URL, ENV_TOKEN = "PIPELINE_API_URL", "PIPELINE_API_TOKEN"
APP_NAME = "lora-pipeline"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str
    source: str  # "environment", the config file's path, or a mix of both


class NotConfiguredError(Exception):
    """No API address or token: the message says how to give them."""


def config_path() -> Path:
    """The platform's config directory (XDG_CONFIG_HOME or ~/.config on Linux) / lora-pipeline."""
    return Path(click.get_app_dir(APP_NAME)) / "config.json"


def load() -> Credentials:
    stored: dict[str, str] = {}
    path = config_path()
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NotConfiguredError(f"{path} cannot be read ({exc}): run `pipeline login` again") from None
    url = os.environ.get(ENV_URL) or stored.get("url") or ""
    token = os.environ.get(ENV_TOKEN) or stored.get("token") or ""
    if not url or not token:
        missing = " and ".join(n for n, v in ((ENV_URL, url), (ENV_TOKEN, token)) if not v)
        raise NotConfiguredError(f"No API {'address' if not url else 'token'} ({missing} unset and no saved login):"
                                 " run `pipeline login`, or set PIPELINE_API_URL and PIPELINE_API_TOKEN"
                                 " (a token from `pipeline users token NAME`)")
    source = "environment" if os.environ.get(ENV_URL) and os.environ.get(ENV_TOKEN) else str(path)
    return Credentials(url.rstrip("/"), token, source)


def save(url: str, token: str) -> Path:
    """Written owner-only (0600) in an owner-only directory, replaced whole."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    part = path.with_suffix(".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"url": url.rstrip("/"), "token": token}, out)
    os.chmod(part, 0o600)
    os.replace(part, path)
    return path


def forget() -> bool:
    path = config_path()
    if not path.exists():
        return False
    path.unlink()
    return True
