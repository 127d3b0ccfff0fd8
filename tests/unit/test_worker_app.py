"""The worker's Faust app takes its settings (no broker needed to build it)."""

from __future__ import annotations

import pytest

from streams.app import create_app
from trending_arxiv.settings import WorkerSettings


def test_no_standby_tables_by_default_and_the_setting_turns_them_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Standby copies double a scaled-out worker's table work (README, Scaling out)."""
    app, _ = create_app(WorkerSettings(namespace="app-test"))
    assert app.conf.table_standby_replicas == 0
    monkeypatch.setenv("TRENDING_TABLE_STANDBY_REPLICAS", "1")
    app, _ = create_app(WorkerSettings(namespace="app-test-2"))
    assert app.conf.table_standby_replicas == 1
