"""Replay → Kafka → Faust → Elasticsearch on the real servers: exact counts, no doubles."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer

from producers.replay import replay
from producers.settings import ProducerSettings
from tests.fakes import paths
from tests.integration.pipeline import settings_for, start_pipeline, wait_for_quiet
from trending_arxiv.core.simulate import SimulationResult, read_lines, simulate
from trending_arxiv.demo import bundled_sample_path, wait_until_counted

pytestmark = pytest.mark.integration

SEED_PAPERS = json.loads(paths.SEED_PAPERS.read_text())


def paper_counts(es: Elasticsearch, index: str) -> dict[str, int]:
    es.indices.refresh(index=index)
    hits = es.search(index=index, query={"match_all": {}}, size=1000)["hits"]["hits"]
    return {h["_id"]: h["_source"].get("posts", {}).get("all", 0) for h in hits}


def test_seed_sample_counts_exactly_and_replaying_twice_doubles_nothing(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    sample = bundled_sample_path()
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_bytes(b'{"data": {"id": "1", "text": 5}\n{truncated\n')
    reference = simulate(read_lines([sample]))
    expected = {p["arxiv_id"]: p["seed_posts"] for p in SEED_PAPERS}
    assert reference.posts_by_paper == expected  # the reference itself is right

    # A refresh every second: once counted, refreshes must send only changed papers.
    processes = start_pipeline(
        namespace, kafka, es_url, tmp_path, TRENDING_COUNTS_REFRESH_SECONDS="1"
    )
    try:
        producer = ProducerSettings(kafka_bootstrap_servers=kafka, namespace=namespace)
        sent = replay([sample, bad_line], producer, progress=False)
        assert sent.sent == 203 + 2
        wait_until_counted(
            settings,
            expected,
            len(reference.mention_ids),
            processes,
            timeout=180,
            console=_quiet_console(),
        )
        es = Elasticsearch(es_url)
        assert paper_counts(es, settings.indices.papers) == expected
        mentions_before = es.count(index=settings.indices.mentions)["count"]
        assert mentions_before == len(reference.mention_ids)

        again = replay([sample], producer, progress=False)
        assert again.sent == 203
        wait_for_quiet(settings)
        assert paper_counts(es, settings.indices.papers) == expected
        es.indices.refresh(index=settings.indices.mentions)
        assert es.count(index=settings.indices.mentions)["count"] == mentions_before

        titles = {
            h["_id"]: h["_source"]["title"]
            for h in es.search(index=settings.indices.papers, size=100)["hits"]["hits"]
        }
        assert titles == {p["arxiv_id"]: p["title"] for p in SEED_PAPERS}

        letters = _dead_letters(kafka, settings.topics.dead_letter, expected_count=2)
        reasons = sorted(letter["reason"] for letter in letters)
        assert len(reasons) == 2
        assert any("JSON" in r for r in reasons), reasons

        top = subprocess.run(
            [
                sys.executable,
                "-m",
                "trending_arxiv.cli.main",
                "top",
                "--window",
                "all",
                "--json",
                "--limit",
                "3",
            ],
            env={**processes.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        rows = [json.loads(line) for line in top.stdout.splitlines()]
        assert [(r["arxiv_id"], r["posts"]) for r in rows] == [
            ("1602.02410", 142),
            ("1601.04589", 20),
            ("1511.07916", 8),
        ]
        _assert_refreshes_send_only_changed_papers(tmp_path / "worker.log", reference)
    finally:
        processes.stop()


def _assert_refreshes_send_only_changed_papers(log: Path, reference: SimulationResult) -> None:
    """A refresh that republished every paper with posts within 30 days of the newest
    would send 13 papers each second; windows change only when a post leaves one
    (`counting.next_count_change`), so nearly every refresh sends none."""
    newest = max(state["last"] for state in reference.states.values())
    recent = [s for s in reference.states.values() if s["last"] >= newest - 30 * 86400]
    assert len(recent) == 13
    # One refresh may re-send them all once, when stream time (the watermark) passes the
    # posts of a partition that lagged: with envelopes a partition's posts arrive in a few
    # records, so that catch-up can come late in a short test. Then they must settle.
    deadline = time.monotonic() + 15
    while True:
        refreshed = [
            int(n) for n in re.findall(r"refreshed counts of (\d+) papers", log.read_text())
        ]
        settled = len(refreshed) >= 5 and sum(refreshed[-5:]) < len(recent)
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(refreshed) >= 5, refreshed  # a refresh a second while the test ran
    assert sum(refreshed[-5:]) < len(recent), refreshed


def _dead_letters(kafka: str, topic: str, expected_count: int) -> list[dict]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=kafka, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    letters = []
    for record in consumer:
        letters.append(json.loads(record.value))
        if len(letters) >= expected_count:
            break
    consumer.close()
    return letters


def _quiet_console():
    from rich.console import Console

    return Console(quiet=True)
