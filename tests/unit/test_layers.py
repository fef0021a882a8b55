"""Imports point down only (docs/architecture.md, "Floors"): a module never imports a package on a
floor above its own, nor a sibling on its own floor, lazy (function-level) imports included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOORS = {"domain": 0, "infra": 1, "projections": 2, "handlers": 2, "gpu_agent": 2, "web": 3, "pipeline": 4}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def wrong_way_imports(root: Path = ROOT) -> list[str]:
    wrong = []
    for package, floor in FLOORS.items():
        for path in sorted((root / package).rglob("*.py")):
            for imported, line in sorted(imported_packages(path)):
                if imported != package and FLOORS.get(imported, -1) >= floor:
                    wrong.append(f"{path.relative_to(root)}:{line} imports {imported}")
    return wrong


def test_every_import_points_down_a_floor():
    assert wrong_way_imports() == []


def test_the_check_sees_upward_and_sideways_imports_inside_functions(tmp_path):
    for package in FLOORS:
        (tmp_path / package).mkdir()
    (tmp_path / "domain" / "rules.py").write_text("def f():\n    from web import app\n")
    (tmp_path / "handlers" / "pods.py").write_text("import infra.bus\nimport gpu_agent.config\n")
    (tmp_path / "web" / "page.py").write_text("import pipeline.cli\nfrom projections import jobs\n")
    assert wrong_way_imports(tmp_path) == [
        "domain/rules.py:2 imports web", "handlers/pods.py:2 imports gpu_agent", "web/page.py:1 imports pipeline"]
