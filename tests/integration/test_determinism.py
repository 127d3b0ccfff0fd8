"""One file replayed through two real pipelines with different partition counts and batch
sizes gives the same answer, paper for paper and field for field, and each paper's
document is `simulate()`'s count update at the document's own `counts_as_of`; both fire
`simulate()`'s alerts, with the same moments and numbers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from producers.replay import replay
from producers.settings import ProducerSettings
from tests.hostile.corpus import fuzz_corpus
from tests.integration.pipeline import paper_documents, start_pipeline, wait_for_quiet
from trending_arxiv.core import counting
from trending_arxiv.core.alerting import AlertRules
from trending_arxiv.core.documents import counts_document
from trending_arxiv.core.models import Alert, parse_utc
from trending_arxiv.core.simulate import read_lines, simulate
from trending_arxiv.demo import PipelineProcesses, bundled_sample_path, read_alerts
from trending_arxiv.kafka import ensure_topics
from trending_arxiv.settings import CommonSettings

pytestmark = pytest.mark.integration

# Fields of a paper document that do not depend on when it was counted.
TIMELESS = ("trend_rank", "first_seen", "last_seen", "sources")


def run(
    namespace: str,
    kafka: str,
    es_url: str,
    logs: Path,
    partitions: int,
    batch_size: int,
    lateness: float,
) -> tuple[CommonSettings, PipelineProcesses]:
    settings = CommonSettings(
        kafka_bootstrap_servers=kafka,
        elasticsearch_url=es_url,
        namespace=namespace,
        topic_partitions=partitions,
    )
    ensure_topics(settings)  # before the worker: with this run's partition count
    logs.mkdir()
    processes = start_pipeline(
        namespace,
        kafka,
        es_url,
        logs,
        TRENDING_TOPIC_PARTITIONS=str(partitions),
        TRENDING_BATCH_SIZE=str(batch_size),
        TRENDING_COUNTS_REFRESH_SECONDS="1",
        TRENDING_WATERMARK_IDLE_SECONDS="2",
        TRENDING_ALERT_LATENESS_SECONDS=str(lateness),
    )
    return settings, processes


def _timeless(document: dict[str, Any]) -> dict[str, Any]:
    return {field: document.get(field) for field in TIMELESS}


def settled_documents(
    es: Elasticsearch,
    settings: CommonSettings,
    processes: PipelineProcesses,
    states: dict[str, Any],
    timeout: float = 90.0,
) -> dict[str, dict[str, Any]]:
    """The papers' documents once the refresh has caught up with stream time.

    Stream time goes on past the newest post once every partition is idle, and the
    refresh re-sends the papers whose windows that changes: a paper past 30 days
    without posts loses its `trend_rank`. Waited for (the refresh timer can run late on
    a loaded machine), not slept for: every document agrees with its paper's count at
    the newest `counts_as_of` of the namespace.
    """
    wait_for_quiet(settings, timeout=60)
    deadline = time.monotonic() + timeout
    while True:
        processes.check_alive()
        documents = paper_documents(es, settings.indices.papers)
        newest = max(parse_utc(d["counts_as_of"]) for d in documents.values())
        stale = [
            arxiv_id
            for arxiv_id, state in states.items()
            if _timeless(documents[arxiv_id])
            != _timeless(counts_document(counting.count_update(arxiv_id, state, newest)))
        ]
        if not stale:
            return documents
        assert time.monotonic() < deadline, (settings.namespace, newest, stale[:10])
        time.sleep(0.5)


def test_two_pipelines_with_different_partitions_and_batches_agree_field_for_field(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    corpus = tmp_path / "corpus.jsonl"
    # Bluesky reposts (joins), deletes, duplicates and bad lines besides the seed sample.
    fuzz_corpus().write_corpus(fuzz_corpus().generate(total=1500, seed=5, order_safe=True), corpus)
    files = [bundled_sample_path(), corpus]
    reference = simulate(read_lines(files), alert_rules=AlertRules())
    assert len(reference.alerts) > 20
    # The files are not quite in event-time order (nor are the two one after the other).
    lateness = reference.disorder_seconds + 1

    runs = [
        run(namespace, kafka, es_url, tmp_path / "a", 2, batch_size=1, lateness=lateness),
        run(f"{namespace}-b", kafka, es_url, tmp_path / "b", 5, batch_size=500, lateness=lateness),
    ]
    try:
        for settings, _ in runs:
            producer = ProducerSettings(
                kafka_bootstrap_servers=kafka,
                namespace=settings.namespace,
                topic_partitions=settings.topic_partitions,
            )
            replay(files, producer, progress=False)
        es = Elasticsearch(es_url)
        results, alerts = [], []
        for settings, processes in runs:
            wait_for_quiet(settings, timeout=300)
            deadline = time.monotonic() + 120
            while True:
                processes.check_alive()
                documents = paper_documents(es, settings.indices.papers)
                counted = {a: d["posts"]["all"] for a, d in documents.items()}
                if counted == reference.posts_by_paper:
                    break
                assert time.monotonic() < deadline, (settings.namespace, counted)
                time.sleep(1)
            results.append(settled_documents(es, settings, processes, reference.states))
            expected = {alert.alert_id for alert in reference.alerts}
            alerts.append(read_alerts(settings, expected, processes, timeout=120))
    finally:
        for _, processes in runs:
            processes.stop()

    first, second = results
    for arxiv_id, state in reference.states.items():
        for documents in (first, second):
            document = documents[arxiv_id]
            as_of = parse_utc(document["counts_as_of"])
            want = counts_document(counting.count_update(arxiv_id, state, as_of))
            got = {field: document.get(field) for field in want}
            assert got == want, arxiv_id
        assert {f: first[arxiv_id][f] for f in TIMELESS} == {
            f: second[arxiv_id][f] for f in TIMELESS
        }, arxiv_id
    # Each alert with its moment and numbers: the reference's, whatever the partitions.
    for fired in alerts:
        assert list(map(_fact, fired)) == list(map(_fact, reference.alerts))


def _fact(alert: Alert) -> tuple[str, str, list[tuple[str, float]]]:
    return alert.alert_id, alert.triggered_at.isoformat(), sorted(alert.numbers.items())
