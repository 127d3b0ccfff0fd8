"""The replay producer SIGKILLed mid-file and restarted with the same checkpoint: it
resumes after what Kafka acknowledged, and Elasticsearch counts nothing lost or doubled."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.fakes.kafka import read_topic
from tests.faults.replaying import (
    REPOST_WAIT_ENV,
    assert_counts_exact,
    build_corpus,
    checkpoint_line,
    finish_producer,
    start_producer,
    wait_for_checkpoint,
)
from tests.integration.pipeline import settings_for, start_pipeline, wait_for_quiet

pytestmark = pytest.mark.integration


def test_producer_killed_mid_file_resumes_from_its_checkpoint(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    corpus, reference = build_corpus(tmp_path, generated=2_500, seed=31)
    corpus_lines = [line for line in corpus.read_bytes().splitlines() if line.strip()]
    total = len(corpus_lines)
    checkpoint = tmp_path / "replay.checkpoint.json"
    output = tmp_path / "producer.out"
    processes = start_pipeline(namespace, kafka, es_url, tmp_path, **REPOST_WAIT_ENV)
    try:
        first = start_producer(corpus, checkpoint, processes.env, output, rate=400)
        wait_for_checkpoint(checkpoint, at_least=total // 4, timeout=60)
        time.sleep(0.3)  # mid-file, between two checkpoint saves
        os.killpg(first.pid, signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        acknowledged = checkpoint_line(checkpoint)
        assert 0 < acknowledged < total, (acknowledged, total)
        # The checkpoint skipped no post Kafka did not hold: every line up to it is in
        # posts.raw (the producer writes envelopes; an envelope acks all its posts at once).
        held = {post.value for post in read_topic(settings, expected=acknowledged)}
        assert set(corpus_lines[:acknowledged]) <= held

        second = start_producer(corpus, checkpoint, processes.env, output)
        summary = finish_producer(second, output, timeout=120)
        # It resumed after the acknowledged prefix instead of starting over.
        assert summary["already_sent"] == acknowledged
        assert summary["sent"] == total - acknowledged
        # Kafka holds every line at least once: the killed run's unsaved tail twice.
        posts = read_topic(settings, expected=total, timeout=60)
        assert set(corpus_lines) <= {post.value for post in posts}
        assert len(posts) >= total

        wait_for_quiet(settings, timeout=150)
        assert_counts_exact(settings, reference, processes, timeout=60)
        processes.check_alive()
    finally:
        processes.stop()
