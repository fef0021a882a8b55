"""Processes that are not (or no longer) our children, read from /proc: alive or not, how they
ended. Standard library only (a local pod's host process imports it). Where nothing reaps orphans
(a container whose init does not), a dead process stays a zombie: it counts as ended."""

from __future__ import annotations

import os
import signal as signals
from dataclasses import dataclass
from pathlib import Path

ENDED_STATES = ("Z", "X", None)


@dataclass(frozen=True)
class Process:
    """A pid with its start time (clock ticks after boot), so a reused pid is not taken for it."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> Process:
        return cls(pid, stat(pid).start or 0)

    def alive(self) -> bool:
        now = stat(self.pid)
        return now.start == self.start and now.state not in ENDED_STATES

    def signal(self, signum: int, group: bool = False) -> bool:
        """Sends `signum` (to its process group with `group`) if it still runs; whether it was sent."""
        if not self.alive():
            return False
        try:
            (os.killpg if group else os.kill)(self.pid, signum)
        except ProcessLookupError:
            return False
        return True


@dataclass(frozen=True)
class Stat:
    state: str | None  # R, S, D, T, Z (zombie), …; None: no such process
    start: int | None
    wait_status: int | None  # as waitpid(2) gives it; set once the process ended (a zombie)


def stat(pid: int) -> Stat:
    """Fields 3, 22 and 52 of /proc/<pid>/stat (proc(5))."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return Stat(None, None, None)
    return Stat(fields[0], int(fields[19]), int(fields[49]) if len(fields) > 49 else None)


def describe_wait_status(status: int | None) -> str:
    """'exited with 1', 'killed by SIGKILL', or 'ended' when unknown."""
    if status is None:
        return "ended"
    if os.WIFSIGNALED(status):
        return f"killed by {signals.Signals(os.WTERMSIG(status)).name}"
    return f"exited with {os.WEXITSTATUS(status)}"


def describe_returncode(code: int) -> str:
    """The same for a Popen return code (negative: the signal that ended it)."""
    return f"killed by {signals.Signals(-code).name}" if code < 0 else f"exited with {code}"
