"""The HTML pages, one module per page (or group of pages); each module lists its handlers in
`routes`, and the app registers every module found here (web/app.py)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def all_routes() -> list[Any]:
    found: list[Any] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        found.extend(getattr(importlib.import_module(f"{__name__}.{info.name}"), "routes", []))
    return found
