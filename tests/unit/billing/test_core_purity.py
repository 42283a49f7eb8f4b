"""The functional core stays pure: stdlib, dateutil and ISO 4217 data only; no I/O, no clock.

Read with ``ast`` (nothing is imported to check it), so a forbidden import fails here even if it
would never run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import models.billing

CORE = Path(models.billing.__file__).parent
CORE_MODULES = sorted(CORE.rglob("*.py"))

ALLOWED_ROOTS = frozenset({
    "__future__", "collections", "dataclasses", "datetime", "decimal", "enum", "fractions", "functools",
    "itertools", "typing", "calendar", "math",
    "dateutil",  # calendar arithmetic, should the core need it
    "iso4217",  # a data library: the ISO 4217 table
})
ALLOWED_PACKAGE = "models.billing"
FORBIDDEN_EXAMPLES = (
    "sqlalchemy, dramatiq, redis, structlog, worker, jobs, models.tables, socket, os, time, random, logging, "
    "pathlib, subprocess, urllib, requests"
)
CLOCK_READS = frozenset({("datetime", "now"), ("date", "today"), ("datetime", "utcnow"), ("time", "time"),
                         ("datetime", "today")})


def imported_names(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """Every name an ``import`` or ``from m import n`` brings in (as ``m.n``), relative ones made absolute."""
    package = module.rpartition(".")[0]
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            prefix = ".".join(filter(None, (base if node.level else "", node.module or "")))
            names.extend((node.lineno, f"{prefix}.{alias.name}") for alias in node.names)
    return names


def is_allowed(name: str) -> bool:
    in_core = name == ALLOWED_PACKAGE or name.startswith(ALLOWED_PACKAGE + ".")
    return in_core or name.split(".")[0] in ALLOWED_ROOTS


def dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def clock_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """Every ``datetime.now``, ``date.today``, ``datetime.utcnow``, ``time.time`` (called or not)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = dotted(node)
            if name and tuple(name.split(".")[-2:]) in CLOCK_READS:
                found.append((node.lineno, name))
    return found


def dynamic_imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            if name in {"__import__", "importlib.import_module", "import_module", "exec", "eval", "open"}:
                found.append((node.lineno, name))
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_the_core_has_the_expected_modules() -> None:
    names = {path.stem for path in CORE_MODULES}
    assert {"money", "calendar", "proration", "balance", "composition", "errors"} <= names


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda path: path.name)
def test_core_modules_import_only_the_pure_allowlist(path: Path) -> None:
    module = module_name(path)
    names = imported_names(parse(path), module)
    bad = [f"line {line}: {name}" for line, name in names if not is_allowed(name)]
    assert not bad, (
        f"{module} imports outside the pure core's allowlist: {bad}. Allowed: {sorted(ALLOWED_ROOTS)} and "
        f"{ALLOWED_PACKAGE}.*; forbidden, for example: {FORBIDDEN_EXAMPLES}. "
        "Do the I/O in worker/ or jobs/ and pass plain values in."
    )


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda path: path.name)
def test_core_modules_never_read_the_clock(path: Path) -> None:
    reads = clock_reads(parse(path))
    assert not reads, f"{module_name(path)} reads the clock at {reads}: take `as_of: date` as a parameter"


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda path: path.name)
def test_core_modules_do_not_import_dynamically_or_open_files(path: Path) -> None:
    calls = dynamic_imports(parse(path))
    assert not calls, f"{module_name(path)} calls {calls}: the core takes values in and gives values out"


@pytest.mark.parametrize(
    ("source", "module", "bad"),
    [
        ("import sqlalchemy", "models.billing.x", ["sqlalchemy"]),
        ("from models.tables import invoice", "models.billing.x", ["models.tables.invoice"]),
        ("from models import tables", "models.billing.x", ["models.tables"]),
        ("from models import billing", "models.billing.x", []),
        ("from .. import tables", "models.billing.x", ["models.tables"]),  # relative, made absolute
        ("from ..tables.invoice import Invoice", "models.billing.x", ["models.tables.invoice.Invoice"]),
        ("from . import money", "models.billing.x", []),  # relative inside the core: fine
        ("from .money import parse_amount", "models.billing.x", []),
        ("import os, datetime", "models.billing.x", ["os"]),
        ("import time", "models.billing.x", ["time"]),
        ("import models", "models.billing.x", ["models"]),
        ("import models.billingextra", "models.billing.x", ["models.billingextra"]),
        ("from dateutil.relativedelta import relativedelta", "models.billing.x", []),
        ("import logging", "models.billing.x", ["logging"]),
    ],
)
def test_the_import_checker_itself(source: str, module: str, bad: list[str]) -> None:
    found = [name for _, name in imported_names(ast.parse(source), module) if not is_allowed(name)]
    assert found == bad


@pytest.mark.parametrize(
    ("source", "reads"),
    [
        ("datetime.now()", ["datetime.now"]),
        ("datetime.datetime.now(tz)", ["datetime.datetime.now"]),
        ("date.today()", ["date.today"]),
        ("datetime.utcnow()", ["datetime.utcnow"]),
        ("time.time()", ["time.time"]),
        ("clock = date.today", ["date.today"]),  # a reference is a read waiting to happen
        ("as_of + timedelta(days=1)", []),
        ("period.start.today_flag", []),
    ],
)
def test_the_clock_checker_itself(source: str, reads: list[str]) -> None:
    assert [name for _, name in clock_reads(ast.parse(source))] == reads


def test_importing_the_core_loads_no_infrastructure() -> None:
    # models/__init__.py must stay empty: importing the core must not drag in the database or the broker
    probe = (
        "import sys\n"
        "import models.billing.composition, models.billing.money, models.billing.errors\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy', 'dramatiq', 'redis', 'structlog', 'worker', 'jobs', 'psycopg', 'pydantic'} "
        "or m.startswith('models.tables'))\n"
        "print(','.join(bad))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=CORE.parent.parent,
        timeout=60,
    )
    assert completed.stdout.strip() == "", f"importing models.billing loaded: {completed.stdout.strip()}"
