"""Lint and types are part of the test run (so of CI): ruff over the whole tree and mypy over the
domain and the ground floor, both configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=240,
                          check=False)


def test_ruff_finds_nothing_to_fix():
    done = run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_no_type_errors_in_the_domain_and_the_ground_floor():
    done = run("mypy")
    assert done.returncode == 0, done.stdout + done.stderr
