"""Argument types the commands share: a number within the range its use can hold, refused by
argparse in one line (exit 2) instead of by PostgreSQL ("bigint out of range") in a traceback."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`."""

    def parse(text: str) -> int:
        shown = text if len(text) <= 24 else f"{text[:20]}… ({len(text):,} characters)"
        digits = text.strip().removeprefix("-").removeprefix("+")
        if not (digits.isascii() and digits.isdigit()):
            raise argparse.ArgumentTypeError(f"{shown} is not a whole number")
        value = int(text) if len(digits) <= 30 else None  # longer: past any range here, not worth reading
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low:,} to {high:,} (got {shown})")
        return value

    return parse
