"""The generic top-level names (models, jobs, worker) must resolve to this checkout, not to a
same-named distribution from PyPI that happens to be installed."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", ["models", "jobs", "worker"])
def test_package_imports_from_this_checkout(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == CHECKOUT / package


@pytest.mark.parametrize("package", ["models", "jobs", "worker"])
def test_no_other_distribution_provides_the_package(package: str) -> None:
    providers = importlib.metadata.packages_distributions().get(package, [])
    assert set(providers) <= {"billing-worker"}, providers
