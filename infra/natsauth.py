"""Per-pod NATS credentials: each pod gets a user of its own that may publish only its job's
telemetry and touch only its job's object bucket (docs/architecture.md, "Pod credentials").

nats-server reads its users from `auth.conf` (in the server's state folder, next to `nats.pid`);
the control plane rewrites that file and signals the server to reload it. Reload keeps every
connection whose user still exists and drops the ones whose user was removed, so revoking a pod's
user also cuts it off."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from infra.bus import job_bucket
from infra.telemetry import job_subjects

CONTROL_USER = "control"
AUTH_FILE = "auth.conf"
USERS_FILE = "pod-users.json"


@dataclass(frozen=True)
class PodCredentials:
    user: str
    password: str
    inbox_prefix: str

    def env(self) -> dict[str, str]:
        """What the agent reads (gpu_agent/config.py)."""
        return {"NATS_USER": self.user, "NATS_PASSWORD": self.password, "NATS_INBOX_PREFIX": self.inbox_prefix}


def pod_user(job_id: str, attempt: int) -> str:
    return f"pod-{job_id.replace('-', '')}-{attempt}"


def inbox_prefix(job_id: str) -> str:
    """A pod may subscribe only under this prefix: it cannot read replies meant for others."""
    return f"_INBOX_{job_id.replace('-', '')}"


def pod_permissions(job_id: str) -> dict[str, dict[str, list[str]]]:
    """Exactly what the agent does: publish telemetry for its job; read and write objects in its
    job's bucket (JetStream API on that bucket's stream, chunk and meta subjects, flow control).
    STREAM.NAMES is how nats-py finds a bucket's stream when reading: it lists names, no data."""
    bucket = job_bucket(job_id)
    stream = f"OBJ_{bucket}"
    return {
        "publish": {"allow": [
            job_subjects(job_id), "$JS.API.STREAM.NAMES",
            f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$JS.API.STREAM.PURGE.{stream}", f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>",
            f"$JS.API.CONSUMER.*.{stream}", f"$JS.API.CONSUMER.*.{stream}.>",
            f"$O.{bucket}.>", f"$JS.FC.{stream}.>", f"$JS.ACK.{stream}.>",
        ]},
        "subscribe": {"allow": [f"{inbox_prefix(job_id)}.>"]},
    }


def control_password(auth_dir: Path) -> str:
    """The control plane's own password, made once per state folder (mode 0600)."""
    path = auth_dir / "control.password"
    if not path.exists():
        auth_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port or 4222}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def write_auth_file(auth_dir: Path, pods: dict[str, dict[str, str]]) -> None:
    """The server's `authorization` block: the control user (everything) and one user per pod."""
    users: list[dict[str, Any]] = [{"user": CONTROL_USER, "password": control_password(auth_dir)}]
    users += [{"user": user, "password": pod["password"], "permissions": pod_permissions(pod["job_id"])}
              for user, pod in sorted(pods.items())]
    # JSON is valid NATS configuration syntax; quoted strings keep `$JS…` literal.
    text = "# written by LoRA Pipeline (infra/natsauth.py): do not edit\nauthorization " + \
        json.dumps({"users": users}, indent=1) + "\n"
    part = auth_dir / (AUTH_FILE + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    part.replace(auth_dir / AUTH_FILE)


def load_pod_users(auth_dir: Path) -> dict[str, dict[str, str]]:
    path = auth_dir / USERS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


class NatsAuthority:
    """Grants and revokes pod users on an nats-server whose configuration includes our auth file.
    The granted users persist in `pod-users.json`, so a restarted handlers worker keeps them."""

    def __init__(self, auth_dir: Path, nats_url: str) -> None:
        self.auth_dir = auth_dir
        self.nats_url = nats_url

    def grant(self, job_id: str, attempt: int) -> PodCredentials:
        user = pod_user(job_id, attempt)
        password = secrets.token_urlsafe(24)
        with self._users() as pods:
            pods[user] = {"job_id": job_id, "password": password}
        self._reload()
        credentials = PodCredentials(user, password, inbox_prefix(job_id))
        self._wait_until_accepted(credentials)
        return credentials

    def revoke(self, job_id: str, attempt: int | None = None) -> None:
        """Removes the pod user of one attempt, or all of the job's."""
        only = pod_user(job_id, attempt) if attempt is not None else None
        self._remove(lambda user, pod: pod["job_id"] == job_id and only in (None, user))

    def retain(self, job_ids: set[str]) -> None:
        """After a restart: users of jobs no longer active are removed."""
        self._remove(lambda user, pod: pod["job_id"] not in job_ids)

    def granted(self) -> dict[str, str]:
        """user → job id."""
        return {user: pod["job_id"] for user, pod in load_pod_users(self.auth_dir).items()}

    # --- internals ------------------------------------------------------------------------------

    class _Users:
        def __init__(self, authority: NatsAuthority) -> None:
            self.path = authority.auth_dir / USERS_FILE
            self.lock = authority.auth_dir / "pod-users.lock"
            self.auth_dir = authority.auth_dir

        def __enter__(self) -> dict[str, dict[str, str]]:
            self.fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            self.pods = load_pod_users(self.auth_dir)
            return self.pods

        def __exit__(self, *exc: object) -> None:
            try:
                if exc[0] is None:
                    part = self.path.with_name(self.path.name + ".part")
                    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "w") as out:
                        json.dump(self.pods, out)
                    part.replace(self.path)
                    write_auth_file(self.auth_dir, self.pods)
            finally:
                os.close(self.fd)

    def _users(self) -> _Users:
        return self._Users(self)

    def _remove(self, which: Callable[[str, dict[str, str]], bool]) -> None:
        """Removes the matching users and returns once the server refuses them (a reload is
        asynchronous: a revoked pod must not get in during it)."""
        with self._users() as pods:
            gone = {user: pod["password"] for user, pod in pods.items() if which(user, pod)}
            for user in gone:
                del pods[user]
        if not gone:
            return
        self._reload()
        deadline = time.monotonic() + 15.0
        while any(self._accepted(user, password, anywhere=True) for user, password in gone.items()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"nats-server still accepts revoked users {sorted(gone)}")
            time.sleep(0.02)

    def _reload(self) -> None:
        """Every server reading this folder's auth file reloads it: the lone one (`nats.pid`) or each
        node of an embedded cluster (`nats-<node>.pid`); a node that is down reads it when it starts."""
        signalled = 0
        for pid_file in sorted(self.auth_dir.glob("nats*.pid")):
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
                signalled += 1
            except (OSError, ValueError):
                continue
        if not signalled:
            raise RuntimeError(f"no nats-server to reload in {self.auth_dir}")

    def _accepted(self, user: str, password: str, anywhere: bool = False) -> bool:
        """Whether every server of NATS_URL that answers takes the user (or, `anywhere`, any one does)."""
        answers = []
        for server in self.nats_url.split(","):
            try:
                answers.append(nats_accepts(server.strip(), user, password))
            except OSError:  # a cluster node that is down: it reads the file when it starts
                continue
        return any(answers) if anywhere else bool(answers) and all(answers)

    def _wait_until_accepted(self, credentials: PodCredentials, timeout: float = 15.0) -> None:
        """A reload takes effect a moment after the signal: the pod must not race it."""
        deadline = time.monotonic() + timeout
        while not self._accepted(credentials.user, credentials.password):
            if time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not accept the new user {credentials.user} within {timeout}s")
            time.sleep(0.02)


def nats_accepts(url: str, user: str, password: str, timeout: float = 2.0) -> bool:
    """One CONNECT + PING over a raw socket: True on PONG, False on an authorization error."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout) as sock:
            sock.settimeout(timeout)
            reader = sock.makefile("rb")
            reader.readline()  # INFO {...}
            connect = {"user": user, "pass": password, "verbose": False, "pedantic": False, "protocol": 1}
            sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
            return reader.readline().startswith(b"PONG")
    except TimeoutError:  # a server too busy to answer has not accepted (yet): callers poll
        return False
