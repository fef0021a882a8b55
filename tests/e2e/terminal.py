"""Runs `python -m pipeline …` as a user would: in a pseudo-terminal (a real tty, so the client draws
its live progress bar and colours), or with pipes for `--json`; and finds a job's pod processes."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def client_env(base: str, token_header: str, config_home: Path) -> dict[str, str]:
    """The client's environment: the stack's API and a token, and a config directory of the test's own."""
    return {"PIPELINE_API_URL": base, "PIPELINE_API_TOKEN": token_header.removeprefix("Bearer "),
            "XDG_CONFIG_HOME": str(config_home), "TERM": "xterm-256color", "COLUMNS": "140"}


def in_terminal(args: list[str], env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    """(exit code, what the terminal showed, escape sequences removed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on the pty's other end
        os.execve(sys.executable, [sys.executable, "-m", "pipeline", *args], os.environ | env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    shown = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"{args} did not end within {timeout}s: {ANSI.sub('', shown.decode())[-2000:]}")
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), ANSI.sub("", shown.decode(errors="replace"))


def piped(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, Any]:
    """(exit code, the JSON it printed: the last line of JSON lines) for a `--json` command; no traceback."""
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], env=os.environ | env, capture_output=True,
                          text=True, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        pass
    try:  # JSON lines (`watch --json`): the last one
        return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError(f"not JSON: {done.stdout!r} {done.stderr!r}") from None


def pod_processes(job_id: str) -> list[int]:
    """Processes whose environment names the job: its pod's agent (a zombie's environment is gone)."""
    wanted = f"PIPELINE_JOB_ID={job_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
