"""A worker whose offset commits stop for good (aiokafka losing its group coordinator,
injected by `lost_coordinator/sitecustomize.py`) restarts itself in place and the
pipeline ends exact; with the watchdog off, the same fault leaves work uncommitted."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
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
from trending_arxiv.core.simulate import SimulationResult
from trending_arxiv.devstack.pipeline import PipelineProcesses
from trending_arxiv.settings import CommonSettings

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


@dataclass
class FaultRun:
    settings: CommonSettings
    reference: SimulationResult
    processes: PipelineProcesses
    worker_pid: int


@contextlib.contextmanager
def lost_coordinator_run(
    stack_endpoints: tuple[str, str],
    namespace: str,
    tmp_path: Path,
    *,
    generated: int,
    seed: int,
    restart_after: float,
    healthy_peer: bool = False,
) -> Iterator[FaultRun]:
    """A warmed-up pipeline whose worker then loses its coordinator, with a corpus replayed
    into it (with `healthy_peer`, a second worker that keeps its coordinator shares the
    partitions); the processes are stopped on the way out."""
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    corpus, reference = build_corpus(tmp_path, generated=generated, seed=seed)
    trigger = tmp_path / "lose-coordinator"
    processes = start_pipeline(
        namespace, kafka, es_url, tmp_path, **fault_env(trigger, restart_after)
    )
    try:
        if healthy_peer:
            never = {"TRENDING_FAULT_LOSE_COORDINATOR_WHEN": str(tmp_path / "never")}
            processes.start("worker-2", "worker", env=never)
        warm_up(processes.env, settings, processes)
        trigger.touch()
        output = tmp_path / "producer.out"
        checkpoint = tmp_path / "replay.checkpoint.json"
        finish_producer(start_producer(corpus, checkpoint, processes.env, output), output, 120)
        yield FaultRun(settings, reference, processes, processes.children[0][1].pid)
    finally:
        processes.stop()


def test_worker_that_stops_committing_restarts_in_place_and_counts_stay_exact(
    stack_endpoints: tuple[str, str], namespace: str, tmp_path: Path
) -> None:
    # A restarted worker starts with records waiting, and Faust's recovery race
    # (faust-streaming/faust#596) then leaves a partition it never commits past in ~1 of
    # 4 runs here: the watchdog re-reads it half way, so no second restart. The limit
    # leaves room for both (healthy, the worker commits within 1-3 s).
    with lost_coordinator_run(
        stack_endpoints, namespace, tmp_path, generated=1_500, seed=43, restart_after=15
    ) as run:
        wait_for_quiet(run.settings, timeout=180)
        assert_counts_exact(run.settings, run.reference, run.processes, timeout=60)
        run.processes.check_alive()
        assert run.processes.children[0][1].pid == run.worker_pid
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "fault injection: the group coordinator is lost" in log
    assert "restarting the worker in place (restart 1)" in log
    # Removed on its behalf, so the restarted worker need not wait out the old session.
    assert "removed the stuck member" in log
    assert "restart 2" not in log  # the restarted worker is healthy and stays so


def test_a_stuck_worker_restarts_while_its_peer_commits_on(
    stack_endpoints: tuple[str, str], namespace: str, tmp_path: Path
) -> None:
    """Each worker watches its own partitions: the stuck worker restarts, its healthy
    peer does not (watching the group's offsets, both did)."""
    with lost_coordinator_run(
        stack_endpoints, namespace, tmp_path, generated=800, seed=45, restart_after=15,
        healthy_peer=True,
    ) as run:  # fmt: skip
        wait_for_quiet(run.settings, timeout=180)
        assert_counts_exact(run.settings, run.reference, run.processes, timeout=60)
        run.processes.check_alive()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "fault injection: the group coordinator is lost" in log
    assert "restarting the worker in place (restart 1)" in log
    assert "restarting the worker in place" not in (tmp_path / "worker-2.log").read_text()


def test_without_the_watchdog_the_same_fault_leaves_work_uncommitted(
    stack_endpoints: tuple[str, str], namespace: str, tmp_path: Path
) -> None:
    with lost_coordinator_run(
        stack_endpoints, namespace, tmp_path, generated=300, seed=44, restart_after=0
    ) as run:
        with pytest.raises(AssertionError, match="still busy"):
            wait_for_quiet(run.settings, timeout=30)
        run.processes.check_alive()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "fault injection: the group coordinator is lost" in log
