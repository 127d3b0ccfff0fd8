"""Elasticsearch stopped for 30 s mid-replay (private stack): the sink holds its batch,
retries, catches up when Elasticsearch is back; papers and mentions end exact."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.replaying import (
    REPOST_WAIT_ENV,
    assert_counts_exact,
    build_corpus,
    finish_producer,
    start_producer,
    wait_for_checkpoint,
    warm_up,
)
from tests.faults.servers import PrivateStack
from tests.integration.pipeline import group_lag, settings_for, start_pipeline, wait_for_quiet
from trending_arxiv.settings import SinkSettings

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 30.0


def test_elasticsearch_down_30s_mid_replay_loses_nothing(
    private_stack: PrivateStack, private_namespace: str, tmp_path: Path
) -> None:
    kafka, es_url = private_stack.kafka, private_stack.es_url
    settings = settings_for(private_namespace, kafka, es_url)
    corpus, reference = build_corpus(tmp_path, generated=3_000, seed=51)
    checkpoint = tmp_path / "replay.checkpoint.json"
    output = tmp_path / "producer.out"
    # A short retry cap: the sink notices Elasticsearch is back within 3 s, not 60 s.
    processes = start_pipeline(
        private_namespace,
        kafka,
        es_url,
        tmp_path,
        TRENDING_SINK_MAX_RETRY_SECONDS="3",
        **REPOST_WAIT_ENV,
    )
    try:
        warm_up(processes.env, settings, processes)
        producer = start_producer(corpus, checkpoint, processes.env, output, rate=150)
        wait_for_checkpoint(checkpoint, at_least=300, timeout=60)
        private_stack.stop_elasticsearch()
        stopped = time.monotonic()
        finish_producer(producer, output, timeout=120)  # Kafka takes posts meanwhile

        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
        processes.check_alive()
        sink_group = (
            f"{private_namespace}-{SinkSettings(namespace=private_namespace).sink_group_id}"
        )
        topics = [settings.topics.mentions, settings.topics.counts]
        held = group_lag(kafka, sink_group, topics)
        assert held, "the sink committed offsets while Elasticsearch was down"
        took = private_stack.restart_elasticsearch()
        print(f"Elasticsearch back after {took:.1f}s; the sink held {held} records")

        wait_for_quiet(settings, timeout=150)
        assert_counts_exact(settings, reference, processes, timeout=60)
        processes.check_alive()
        sink_log = (tmp_path / "sink.log").read_text(errors="replace")
        assert "Elasticsearch unavailable" in sink_log  # it did see the outage
    finally:
        processes.stop()
