"""A worker whose offset commits stop for good (aiokafka losing its group coordinator,
injected by `lost_coordinator/sitecustomize.py`) restarts itself in place and the
pipeline ends exact; with the watchdog off, the same fault leaves work uncommitted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.replaying import (
    REPOST_WAIT_ENV,
    assert_counts_exact,
    build_corpus,
    finish_producer,
    start_producer,
    warm_up,
)
from tests.integration.pipeline import settings_for, start_pipeline, wait_for_quiet
from trending_arxiv.demo import PipelineProcesses

pytestmark = pytest.mark.integration

INJECTOR = Path(__file__).resolve().parent / "lost_coordinator"


def fault_env(trigger: Path, restart_after: float) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(INJECTOR), os.environ.get("PYTHONPATH")) if p)
    return {
        **REPOST_WAIT_ENV,
        "PYTHONPATH": path,
        # Once this file exists, no commit of the worker ever completes again.
        "TRENDING_FAULT_LOSE_COORDINATOR_WHEN": str(trigger),
        "TRENDING_WORKER_STALL_RESTART_SECONDS": str(restart_after),
        "TRENDING_WORKER_STALL_CHECK_SECONDS": "1",
    }


def replay_through(processes: PipelineProcesses, corpus: Path, tmp_path: Path) -> None:
    output = tmp_path / "producer.out"
    producer = start_producer(corpus, tmp_path / "replay.checkpoint.json", processes.env, output)
    finish_producer(producer, output, timeout=120)


def test_worker_that_stops_committing_restarts_in_place_and_counts_stay_exact(
    stack_endpoints: tuple[str, str], namespace: str, tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    corpus, reference = build_corpus(tmp_path, generated=1_500, seed=43)
    trigger = tmp_path / "lose-coordinator"
    processes = start_pipeline(namespace, kafka, es_url, tmp_path, **fault_env(trigger, 8))
    try:
        warm_up(processes.env, settings, processes)
        trigger.touch()
        worker_pid = processes.children[0][1].pid
        replay_through(processes, corpus, tmp_path)
        wait_for_quiet(settings, timeout=120)
        assert_counts_exact(settings, reference, processes, timeout=60)
        processes.check_alive()
        assert processes.children[0][1].pid == worker_pid
    finally:
        processes.stop()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "fault injection: the group coordinator is lost" in log
    assert "restarting the worker in place (restart 1)" in log
    assert "restart 2" not in log  # the restarted worker is healthy and stays so


def test_without_the_watchdog_the_same_fault_leaves_work_uncommitted(
    stack_endpoints: tuple[str, str], namespace: str, tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    corpus, _ = build_corpus(tmp_path, generated=300, seed=44)
    trigger = tmp_path / "lose-coordinator"
    processes = start_pipeline(namespace, kafka, es_url, tmp_path, **fault_env(trigger, 0))
    try:
        warm_up(processes.env, settings, processes)
        trigger.touch()
        replay_through(processes, corpus, tmp_path)
        with pytest.raises(AssertionError, match="still busy"):
            wait_for_quiet(settings, timeout=30)
        processes.check_alive()
    finally:
        processes.stop()
    assert "fault injection: the group coordinator is lost" in (tmp_path / "worker.log").read_text(
        errors="replace"
    )
