"""Imports point down only (docs/architecture.md, "Floors"): a module never imports a package on a
floor above its own, nor a sibling on its own floor, lazy (function-level) imports included; and no
modules import one another in a cycle, within a package either."""

from __future__ import annotations

import ast
from collections.abc import Iterator
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


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def run_time_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """`node` and everything under it that can run: not the body of `if TYPE_CHECKING:`."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield from (n for other in child.orelse for n in run_time_nodes(other))
        else:
            yield from run_time_nodes(child)


def imported_modules(path: Path, root: Path) -> set[str]:
    """The modules of ours `path` imports when it runs, at any depth of its code (type-only imports
    under `if TYPE_CHECKING:` never run): `from a.b import c` names the module a.b.c when there is
    one, else a.b; relative imports are resolved from the package."""
    here = module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in run_time_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found |= {f"{module}.{alias.name}" if is_module(f"{module}.{alias.name}", root) else module
                      for alias in node.names}
    return {name for name in found if is_module(name, root)}


def is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def import_cycles(root: Path = ROOT) -> list[list[str]]:
    """Each set of modules that import one another, round and round (a strongly connected component
    of the import graph of more than one module), sorted."""
    graph = {module_name(path, root): imported_modules(path, root)
             for package in FLOORS for path in sorted((root / package).rglob("*.py"))}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph.get(module, ())):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(cycles)


def test_no_modules_import_one_another_in_a_cycle():
    assert import_cycles() == []


def test_the_check_sees_cycles_through_function_level_and_relative_imports_not_type_only_ones(tmp_path):
    for package in ("domain", "gpu_agent", "pipeline"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "gpu_agent" / "evaluation.py").write_text("def f():\n    from gpu_agent.generation import g\n")
    (tmp_path / "gpu_agent" / "generation.py").write_text("from gpu_agent import evaluation\n")
    (tmp_path / "pipeline" / "cli.py").write_text("from .entry import COMMANDS\n")
    (tmp_path / "pipeline" / "entry.py").write_text("import domain\n\ndef main():\n    from . import cli\n")
    (tmp_path / "domain" / "rules.py").write_text("import domain.money\n")
    (tmp_path / "domain" / "money.py").write_text("from domain.rules import RULE\n")
    (tmp_path / "domain" / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                                  "    from domain.alone import x\n")
    (tmp_path / "domain" / "alone.py").write_text("import json\nfrom domain.money import usd\n"
                                                  "from domain import typed\n")
    assert import_cycles(tmp_path) == [
        ["domain.money", "domain.rules"], ["gpu_agent.evaluation", "gpu_agent.generation"],
        ["pipeline.cli", "pipeline.entry"]]
