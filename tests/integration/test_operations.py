"""`trending-arxiv healthcheck ROLE` and `trending-arxiv clean NAMESPACE`, run as the real
commands against the real Kafka and Elasticsearch (what docker-compose and users run)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaAdminClient

from streams.app import changelog_topics
from trending_arxiv.kafka import ensure_topics
from trending_arxiv.settings import CommonSettings, WorkerSettings
from trending_arxiv.web.server import BackgroundServer

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "trending_arxiv.cli.main"]


def _run(namespace: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRENDING_NAMESPACE": namespace}
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _topics(kafka: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_healthcheck_follows_the_sink_and_clean_removes_only_its_namespace(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = CommonSettings(namespace=namespace)
    # A neighbour whose name starts with ours must survive `clean`.
    neighbour = CommonSettings(namespace=namespace + "x")
    ensure_topics(neighbour)

    before = _run(namespace, "healthcheck", "sink")
    assert before.returncode != 0
    assert "consumer group" in before.stderr and "0 live members" in before.stderr

    log = (tmp_path / "sink.log").open("wb")
    sink = subprocess.Popen(
        [*CLI, "sink"],
        env={**os.environ, "TRENDING_NAMESPACE": namespace, "TRENDING_ARXIV_ENABLED": "false"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        healthy = _run(namespace, "healthcheck", "sink")
        while healthy.returncode != 0 and time.monotonic() < deadline:
            assert sink.poll() is None, (tmp_path / "sink.log").read_text()
            time.sleep(1)
            healthy = _run(namespace, "healthcheck", "sink")
        assert healthy.returncode == 0, healthy.stderr
        assert "sink healthy" in healthy.stdout
        # The worker of this namespace does not run: its check fails.
        assert _run(namespace, "healthcheck", "worker").returncode != 0

        in_use = _run(namespace, "clean", namespace)
        assert in_use.returncode != 0 and "in use" in in_use.stderr
        assert settings.topics.raw_posts in _topics(kafka)
    finally:
        sink.terminate()
        sink.wait(30)
        log.close()

    # What the worker would leave behind too: its changelog topics.
    worker_topics = changelog_topics(WorkerSettings(namespace=namespace))
    ensure_topics(settings, compacted=worker_topics)
    es = Elasticsearch(es_url)
    assert es.indices.exists(index=settings.indices.mentions)

    deadline = time.monotonic() + 60
    cleaned = _run(namespace, "clean", namespace)
    while cleaned.returncode != 0 and "in use" in cleaned.stderr and time.monotonic() < deadline:
        time.sleep(2)  # the sink's member leaves the group as it closes
        cleaned = _run(namespace, "clean", namespace)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "removed" in cleaned.stdout and settings.indices.mentions in cleaned.stdout

    left = _topics(kafka)
    assert not {t for t in left if t in settings.all_topics or t in worker_topics}
    assert set(neighbour.all_topics) <= left
    for index in (settings.indices.papers, settings.indices.mentions, settings.indices.follows):
        assert not es.indices.exists(index=index)
    assert not es.options(ignore_status=404).indices.exists_index_template(
        name=settings.indices.mentions
    )
    # Cleaning again finds nothing and says so.
    again = _run(namespace, "clean", namespace)
    assert again.returncode == 0 and "removed 0 topics" in again.stdout


def test_healthcheck_api_reads_healthz(namespace: str, stack_endpoints: tuple[str, str]) -> None:
    settings = CommonSettings(namespace=namespace)
    with BackgroundServer(settings) as server:
        result = _run(namespace, "healthcheck", "api", "--url", server.url)
    assert result.returncode == 0, result.stderr
    assert '"status":"ok"' in result.stdout.replace(" ", "")
    gone = _run(namespace, "healthcheck", "api", "--url", server.url)
    assert gone.returncode != 0 and "does not answer" in gone.stderr
