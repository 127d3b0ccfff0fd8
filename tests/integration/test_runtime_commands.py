"""The long-running commands stop cleanly on SIGTERM and SIGINT (trending_arxiv.runtime):
exit code 0, their summary printed, on the real Kafka and Elasticsearch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

pytestmark = pytest.mark.integration


def _start(args: list[str], namespace: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, TRENDING_NAMESPACE=namespace, TRENDING_ARXIV_ENABLED="false")
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "trending_arxiv.cli.main", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_for_index(es: Elasticsearch, index: str, process: subprocess.Popen[bytes]) -> None:
    """Until the command has created `index` (it is up and consuming next)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited early with {process.returncode}"
        if es.indices.exists(index=index):
            return
        time.sleep(0.3)
    raise AssertionError(f"{index} not created within 90 s")


@pytest.mark.parametrize(
    ("command", "index_suffix", "summary", "sig"),
    [
        ("sink", "papers", "sink stopped:", signal.SIGINT),
        ("sink", "papers", "sink stopped:", signal.SIGTERM),
        ("alerts", "alerts", "alerts stopped:", signal.SIGINT),
        ("alerts", "alerts", "alerts stopped:", signal.SIGTERM),
        ("subscriptions run", "alerts", "subscriptions stopped:", signal.SIGINT),
        ("subscriptions run", "alerts", "subscriptions stopped:", signal.SIGTERM),
    ],
)
def test_command_stops_cleanly_on_signal(
    stack_endpoints: tuple[str, str],
    namespace: str,
    tmp_path: Path,
    command: str,
    index_suffix: str,
    summary: str,
    sig: signal.Signals,
) -> None:
    es = Elasticsearch(stack_endpoints[1])
    log = tmp_path / f"{command.replace(' ', '-')}.log"
    process = _start(command.split(), namespace, log)
    try:
        _wait_for_index(es, f"{namespace}-{index_suffix}", process)
        time.sleep(1.0)  # into its consume loop
        process.send_signal(sig)
        code = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert summary in output
    assert f"{sig.name}: stopping" in output
    assert "Traceback" not in output
