"""`billing worker` gives its processes an empty multiprocess directory, and /metrics sums the files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from worker import metrics
from worker.exposition import MetricsExposition
from worker.metrics import MULTIPROC_ENV, prepare_multiprocess


def test_a_directory_per_port_is_chosen_and_emptied(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    env: dict[str, str] = {}
    path = Path(str(prepare_multiprocess(env, 9464)))
    assert env[MULTIPROC_ENV] == str(path) and path.parent == tmp_path and path.name.endswith("-9464")
    (path / "counter_123.db").write_bytes(b"stale")
    (path / "notes.txt").write_text("kept")

    assert prepare_multiprocess({}, 9464) == str(path)
    assert sorted(child.name for child in path.iterdir()) == ["notes.txt"]


def test_a_chosen_directory_is_left_alone_and_port_zero_needs_none(tmp_path: Path) -> None:
    (tmp_path / "counter_1.db").write_bytes(b"shared")
    env = {MULTIPROC_ENV: str(tmp_path)}
    assert prepare_multiprocess(env, 9464) == str(tmp_path)
    assert (tmp_path / "counter_1.db").exists()
    assert prepare_multiprocess({}, 0) is None


def test_the_exposition_fork_exists_only_with_a_port_and_a_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    assert MetricsExposition(9464).forks == []
    monkeypatch.setenv(MULTIPROC_ENV, "/nonexistent")
    assert MetricsExposition(0).forks == []
    [fork] = MetricsExposition(9464).forks
    assert f"{fork.__module__}:{fork.__name__}" == "worker.health:serve_worker_endpoint"


def test_without_a_directory_metrics_render_our_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    assert metrics.exposition_registry() is metrics.REGISTRY
    assert b"billing_worker_processes" in metrics.render()
