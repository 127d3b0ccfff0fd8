"""`trending-arxiv demo` as a new user runs it, on the real Kafka and Elasticsearch:
a file whose papers the bundled catalog doesn't know, a folder, the alerts the input's
own history triggers, and no namespace left behind (unless --keep)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaAdminClient

from trending_arxiv.core.alerting import AlertRules
from trending_arxiv.core.simulate import SimulationResult, read_lines, simulate
from trending_arxiv.demo import bundled_sample_path
from trending_arxiv.settings import CommonSettings

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "trending_arxiv.cli.main"]
# Every seed paper but these two gets an ID the catalog doesn't know (same posts).
KEPT = ("1602.02410", "1601.04589")


def _unknown_papers_sample(target: Path) -> dict[str, str]:
    """The real seed posts with most arXiv IDs moved to IDs of 2023/2024; old -> new."""
    reference = simulate(read_lines([bundled_sample_path()]))
    moved = {
        old: ("23" if old.startswith("15") else "24") + old[2:]
        for old in reference.counts
        if old not in KEPT
    }
    text = bundled_sample_path().read_text(encoding="utf-8")
    for old, new in moved.items():
        text = text.replace(old, new)
    target.write_text(text, encoding="utf-8")
    return moved


def _demo(*args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRENDING_ARXIV_ENABLED": "false"}
    return subprocess.run(
        [*CLI, "demo", "--no-serve", "--timeout", "300", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _namespace_of(stderr: str) -> str:
    found = re.search(r"namespace (demo-[0-9a-f]{8})", stderr)
    assert found, stderr
    return found.group(1)


def _leftovers(namespace: str, kafka: str, es_url: str) -> tuple[list[str], list[str]]:
    settings = CommonSettings(namespace=namespace)
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        topics = [t for t in admin.list_topics() if t.startswith(namespace)]
    finally:
        admin.close()
    es = Elasticsearch(es_url)
    names = settings.indices
    indices = [
        i for i in (names.papers, names.mentions, names.follows) if es.indices.exists(index=i)
    ]
    return topics, indices


def _reference(path: Path) -> SimulationResult:
    return simulate(read_lines([path]), alert_rules=AlertRules())


def test_demo_of_a_folder_of_unknown_papers_prints_exact_counts_alerts_and_cleans_up(
    stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    folder = tmp_path / "posts"
    folder.mkdir()
    moved = _unknown_papers_sample(folder / "unknown.jsonl")
    reference = _reference(folder / "unknown.jsonl")
    assert set(moved.values()) <= set(reference.counts)

    result = _demo("--input", str(folder), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    # Every counted paper, with its exact count; those without metadata by their ID.
    assert {r["arxiv_id"]: r["posts"] for r in rows} == reference.posts_by_paper
    for row in rows:
        if row["arxiv_id"] in moved.values():
            assert row["title"] is None
        else:
            assert row["title"]  # the two papers the bundled catalog knows
    # The alerts the file's own history triggers, after the ranking (stderr with --json).
    printed = re.findall(r"^alert (\S+): ", result.stderr, re.M)
    expected = {a.alert_id for a in reference.alerts}
    assert "1602.02410:accounts_1h:2016-02-08T03" in expected
    assert expected <= set(printed)
    assert "1602.02410 within an hour (threshold 10)" in result.stderr
    # Nothing left behind.
    namespace = _namespace_of(result.stderr)
    assert f"removed namespace {namespace}" in result.stderr
    assert _leftovers(namespace, kafka, es_url) == ([], [])


def test_demo_keep_then_clean(stack_endpoints: tuple[str, str], tmp_path: Path) -> None:
    kafka, es_url = stack_endpoints
    result = _demo("--keep", "--limit", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    namespace = _namespace_of(result.stderr)
    try:
        lines = result.stdout.splitlines()
        ranking = next(i for i, line in enumerate(lines) if "1602.02410" in line)
        alerts_title = next(i for i, line in enumerate(lines) if "Alerts" in line)
        assert ranking < alerts_title  # alerts after the ranking
        assert "accounts_1h" in result.stdout and "velocity" in result.stdout
        assert "2016-02-08 03:" in result.stdout
        topics, indices = _leftovers(namespace, kafka, es_url)
        assert f"{namespace}.posts.raw" in topics and len(indices) == 3
    finally:
        cleaned = subprocess.run(
            [*CLI, "clean", namespace], capture_output=True, text=True, timeout=120, check=False
        )
    assert cleaned.returncode == 0, cleaned.stderr
    assert _leftovers(namespace, kafka, es_url) == ([], [])


def test_demo_input_errors_are_clear(tmp_path: Path) -> None:
    missing = _demo("--input", str(tmp_path / "nope.jsonl"), timeout=60)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    empty = _demo("--input", str(empty_dir), timeout=60)
    for result in (missing, empty):
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert "error:" in result.stderr
    assert "no such file or directory" in missing.stderr
    assert "no .jsonl" in empty.stderr
