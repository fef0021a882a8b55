"""FR4.1.2 adapter storage as the pages show it: the totals over the adapters still stored and
their sizes (the adapters themselves are read by projections/adapters.py)."""

from __future__ import annotations

from typing import Any


def usage(found: list[dict[str, Any]]) -> dict[str, Any]:
    """The storage dashboard's totals over the adapters still stored."""
    stored = [a for a in found if a["deleted_at"] is None]
    total = sum(a["size"] for a in stored)
    return {"models": len(stored), "bytes": total, "average": total // len(stored) if stored else None,
            "deleted": len(found) - len(stored)}


def size(value: int | None) -> str:
    """`15.3 GB`, `665 MB`, `12 KB` (powers of 1000, as storage is billed)."""
    if value is None:
        return "—"
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}" if value < 100 * scale else f"{value / scale:.0f} {unit}"
    return f"{value} B"
