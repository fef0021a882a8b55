"""The `pipeline` command: the web API's client commands (`jobs`, `login`, `logout`: pipeline/client/)
start without loading the control plane; every other command is pipeline/cli.py's."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pipeline.client.commands import CLIENT_COMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in CLIENT_COMMANDS:
        from pipeline.client.app import run

        return run(args)
    from pipeline.cli import main as control_plane

    return control_plane(args)
