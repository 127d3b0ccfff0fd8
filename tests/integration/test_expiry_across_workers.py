"""Repost expiry with two workers: a subject still unread on the other worker's raw
partition holds the repost's wait, however far ahead this worker's own partitions are
(`core.progress`, `streams.progress`). Real Kafka, real Elasticsearch, two real workers."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from datetime import timedelta
from pathlib import Path

from elasticsearch import Elasticsearch
from kafka import KafkaProducer

from tests.integration.pipeline import (
    pipeline_positions,
    settings_for,
    start_pipeline,
    wait_for_quiet,
)
from tests.integration.test_stream import (
    NOW,
    P1,
    P2,
    bsky_post,
    bsky_repost,
    indexed_posts_by_paper,
)
from trending_arxiv.kafka import partition_of

OWNS = re.compile(r"this worker owns raw partitions \[([0-9, ]*)\]")


def owned_partitions(log: Path) -> set[int] | None:
    """The raw partitions a worker last said it owns (None before it said so)."""
    found = OWNS.findall(log.read_text(errors="replace")) if log.exists() else []
    if not found:
        return None
    return {int(p) for p in found[-1].split(",") if p.strip()}


def wait_for_split(logs: list[Path], partitions: int, timeout: float = 150.0) -> list[set[int]]:
    """Each worker's raw partitions, once they split all of them between them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owned = [owned_partitions(log) or set() for log in logs]
        if (
            all(owned)
            and sum(map(len, owned)) == partitions
            and set().union(*owned) == set(range(partitions))
        ):
            return owned
        time.sleep(0.5)
    raise AssertionError(f"the workers did not split the partitions: {owned}")


def send_to(kafka: str, topic: str, partition: int, events: list[dict]) -> None:
    """Produce `events` to one raw partition, as a producer that does not key by id."""
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for event in events:
        producer.send(topic, value=json.dumps(event).encode(), partition=partition)
    producer.flush()
    producer.close()


def test_a_repost_waits_while_its_subject_is_unread_on_another_workers_partition(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    """Worker 2 is held (SIGSTOP) with the subject unread on its raw partition; worker 1
    reads the repost, then a post three hours later, and sweeps expiry every second
    with a one-minute wait. The repost still counts once worker 2 goes on."""
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    partitions = settings.topic_partitions
    processes = start_pipeline(
        namespace,
        kafka,
        es_url,
        tmp_path,
        TRENDING_REPOST_JOIN_WAIT_SECONDS="60",
        TRENDING_REPOST_EXPIRY_CHECK_SECONDS="1",
    )
    held = None
    try:
        processes.start("worker-2", "worker")
        mine, theirs = wait_for_split(
            [tmp_path / "worker.log", tmp_path / "worker-2.log"], partitions
        )
        held = next(process for name, process, _ in processes.children if name == "worker-2")
        # The subject's ledger partition is worker 1's; its raw record sits on worker 2's.
        rkey = next(
            f"s{n}"
            for n in range(10_000)
            if partition_of(f"at://did:plc:alice/app.bsky.feed.post/s{n}".encode(), partitions)
            in mine
        )
        subject = f"at://did:plc:alice/app.bsky.feed.post/{rkey}"
        # The later post is worker 1's from end to end (its ledger partition, its paper's
        # counting partition), so it is counted while worker 2 is held, well within the
        # group's session timeout: no rebalance hands worker 2's partitions over.
        later_rkey = next(
            f"later{n}"
            for n in range(10_000)
            if partition_of(f"at://did:plc:carol/app.bsky.feed.post/later{n}".encode(), partitions)
            in mine
        )
        later_paper = next(
            paper
            # Numbered from 1: an arXiv number is never 00000 (not an id, never counted).
            for paper in (P2, *(f"2605.{n:05d}" for n in range(1, 10_000)))
            if paper != P1 and partition_of(paper.encode(), partitions) in mine
        )
        os.killpg(held.pid, signal.SIGSTOP)
        raw = settings.topics.raw_posts
        send_to(kafka, raw, min(theirs), [bsky_post("did:plc:alice", rkey, NOW, P1)])
        send_to(kafka, raw, min(mine), [
            bsky_repost("did:plc:bob", "r1", NOW + timedelta(minutes=1), subject),
            bsky_post("did:plc:carol", later_rkey, NOW + timedelta(hours=3), later_paper),
        ])  # fmt: skip
        es = Elasticsearch(es_url)
        deadline = time.monotonic() + 60
        while later_paper not in indexed_posts_by_paper(es, settings.indices.papers):
            assert time.monotonic() < deadline, (
                f"worker 1 did not count the later post:\n{pipeline_positions(settings)}"
            )
            time.sleep(0.5)
        time.sleep(5)  # worker 1's stream time is 3 h on; five expiry sweeps run
        os.killpg(held.pid, signal.SIGCONT)
        held = None
        wait_for_quiet(settings, timeout=120)
        processes.check_alive()
        assert indexed_posts_by_paper(es, settings.indices.papers) == {P1: 2, later_paper: 1}
    finally:
        if held is not None:
            os.killpg(held.pid, signal.SIGCONT)
        processes.stop()
