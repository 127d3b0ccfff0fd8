"""Kafka SIGKILLed mid-replay and restarted (private stack): the producer holds and
retries, the worker and sink reconnect, and the final counts equal the reference."""

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
from tests.integration.pipeline import settings_for, start_pipeline, wait_for_quiet

pytestmark = pytest.mark.integration


def test_kafka_killed_mid_replay_and_restarted_counts_stay_exact(
    private_stack: PrivateStack, private_namespace: str, tmp_path: Path
) -> None:
    kafka, es_url = private_stack.kafka, private_stack.es_url
    settings = settings_for(private_namespace, kafka, es_url)
    corpus, reference = build_corpus(tmp_path, generated=3_000, seed=41)
    checkpoint = tmp_path / "replay.checkpoint.json"
    output = tmp_path / "producer.out"
    processes = start_pipeline(private_namespace, kafka, es_url, tmp_path, **REPOST_WAIT_ENV)
    try:
        warm_up(processes.env, settings, processes)
        producer = start_producer(corpus, checkpoint, processes.env, output, rate=150)
        wait_for_checkpoint(checkpoint, at_least=300, timeout=60)
        private_stack.kill_kafka()
        time.sleep(5)  # down for a while: every client sees connections refused
        took = private_stack.restart_kafka()
        print(f"Kafka back after {took:.1f}s")

        summary = finish_producer(producer, output, timeout=180)
        assert summary["sent"] >= 3_000
        processes.check_alive()  # the worker and sink lived through the outage
        wait_for_quiet(settings, timeout=150)
        assert_counts_exact(settings, reference, processes, timeout=60)
        processes.check_alive()
    finally:
        processes.stop()
