"""Run the real pipeline (worker and sink processes) for one namespace in tests."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import Elasticsearch
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import CoordinatorNotAvailableError, NodeNotReadyError

from trending_arxiv.core.alert_clock import is_watermark
from trending_arxiv.core.envelope import is_envelope, open_envelope
from trending_arxiv.devstack.pipeline import PipelineProcesses, pipeline_env
from trending_arxiv.kafka import ensure_topics, group_offsets
from trending_arxiv.settings import CommonSettings, SinkSettings, WorkerSettings

log = logging.getLogger(__name__)


def settings_for(namespace: str, kafka: str, es_url: str) -> CommonSettings:
    return CommonSettings(
        kafka_bootstrap_servers=kafka, elasticsearch_url=es_url, namespace=namespace
    )


def start_pipeline(
    namespace: str, kafka: str, es_url: str, log_dir: Path, **extra_env: str
) -> PipelineProcesses:
    env = pipeline_env(kafka, es_url, namespace, log_dir)
    env.update(extra_env)
    processes = PipelineProcesses(env=env, log_dir=log_dir)
    ensure_topics(settings_for(namespace, kafka, es_url))
    processes.start("worker", "worker")
    processes.start("sink", "sink")
    return processes


def group_lag(kafka: str, group: str, topics: list[str]) -> int | None:
    """Messages of `topics` not yet committed by `group` (None if the topics have none)."""
    committed, ends = group_offsets(kafka, group, topics)
    if not ends:
        return None
    return sum(end - committed.get(tp, 0) for tp, end in ends.items())


def wait_for_log(path: Path, text: str, timeout: float = 120.0) -> None:
    """Wait until the process log at `path` contains `text`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not in {path.name} within {timeout}s")


def wait_for_commits(kafka: str, group: str, topic: str, timeout: float = 60.0) -> None:
    """Wait until `group` has committed offsets past the start of `topic`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        admin = KafkaAdminClient(bootstrap_servers=kafka)
        try:
            committed = admin.list_group_offsets(group).get(group, {})
        finally:
            admin.close()
        if any(tp.topic == topic and meta.offset > 0 for tp, meta in committed.items()):
            return
        time.sleep(0.5)
    raise AssertionError(f"{group} committed nothing on {topic} within {timeout}s")


def pipeline_groups(settings: CommonSettings) -> list[tuple[str, list[str]]]:
    """The worker's and the sink's consumer groups, each with the topics it reads."""
    worker = WorkerSettings(namespace=settings.namespace)
    sink = SinkSettings(namespace=settings.namespace)
    topics = settings.topics
    return [
        (
            f"{settings.namespace}-{worker.worker_id}",
            [topics.raw_posts, topics.routed_posts, topics.mentions],
        ),
        (f"{settings.namespace}-{sink.sink_group_id}", [topics.mentions, topics.counts]),
    ]


def wait_for_quiet(settings: CommonSettings, timeout: float = 120.0) -> None:
    """Wait until the worker and the sink have committed everything there is."""
    checks = pipeline_groups(settings)
    deadline = time.monotonic() + timeout
    stable = 0
    while time.monotonic() < deadline:
        try:
            lags = [group_lag(settings.kafka_bootstrap_servers, g, t) for g, t in checks]
        except (CoordinatorNotAvailableError, NodeNotReadyError) as error:
            lags = [None]  # a broker that just started: no answer yet
            log.debug("group lag unknown yet: %s", error)

        stable = stable + 1 if all(lag == 0 for lag in lags) else 0
        if stable >= 3:  # quiet for three polls in a row: nothing still in flight
            return
        time.sleep(1.0)
    raise AssertionError(f"pipeline still busy after {timeout}s (lags {lags})")


def pipeline_positions(settings: CommonSettings) -> str:
    """Each group's committed offset and the log end of every partition it reads, for an
    assertion's message (where did the records stop?)."""
    lines = []
    for group, group_topics in pipeline_groups(settings):
        committed, ends = group_offsets(settings.kafka_bootstrap_servers, group, group_topics)
        lines += [
            f"{group} {tp.topic}[{tp.partition}]: {committed.get(tp)}/{end}"
            for tp, end in sorted(ends.items())
            if end
        ]
    return "\n".join(lines)


def paper_documents(es: Elasticsearch, index: str) -> dict[str, dict[str, Any]]:
    """Every paper document with counts, after a refresh."""
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=10_000)["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits if "posts" in hit["_source"]}


def wait_for_counts(
    es: Elasticsearch,
    settings: CommonSettings,
    processes: PipelineProcesses,
    posts_by_paper: dict[str, int],
    timeout: float = 180.0,
) -> dict[str, dict[str, Any]]:
    """The paper documents, once their all-time posts are `posts_by_paper` (or the
    timeout passed: the caller's assertion then shows the difference)."""
    deadline = time.monotonic() + timeout
    while True:
        processes.check_alive()
        wait_for_quiet(settings, timeout=240)
        documents = paper_documents(es, settings.indices.papers)
        counted = {a: d["posts"]["all"] for a, d in documents.items()}
        if counted == posts_by_paper or time.monotonic() > deadline:
            return documents
        time.sleep(1)


def topic_values(kafka: str, topic: str) -> list[dict[str, Any]]:
    """Every value of `topic` so far, as JSON (envelopes read line by line), in each
    partition's order."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=kafka, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    found = [
        orjson.loads(line)
        for record in consumer
        if not is_watermark(record.headers)
        for line in (open_envelope(record.value) if is_envelope(record.headers) else [record.value])
    ]
    consumer.close()
    return found
