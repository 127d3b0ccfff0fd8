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


def test_the_consumer_fetches_half_a_mebibyte_ahead_a_partition_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fetched records wait decompressed in the worker: 1 MiB a partition (Faust's
    default) held ~90 MiB more at the peak of a 1M-post run on 8 partitions."""
    app, _ = create_app(WorkerSettings(namespace="app-test-3"))
    assert app.conf.consumer_max_fetch_size == 512 * 1024
    monkeypatch.setenv("TRENDING_WORKER_MAX_FETCH_BYTES", "1048576")
    app, _ = create_app(WorkerSettings(namespace="app-test-4"))
    assert app.conf.consumer_max_fetch_size == 1024 * 1024
    monkeypatch.setenv("TRENDING_WORKER_MAX_FETCH_BYTES", "1000")
    with pytest.raises(ValueError, match="worker_max_fetch_bytes"):
        WorkerSettings()
