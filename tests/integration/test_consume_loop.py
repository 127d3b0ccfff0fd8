"""sinks.consume_loop on the real Kafka: commits after each written batch, redoes a batch
whose write was stopped, and leaves and rejoins the group when commits keep failing."""

from __future__ import annotations

import threading
import time

import pytest
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from sinks.consume_loop import ConsumeLoop, ConsumeOptions, LoopStats
from tests.integration.pipeline import group_lag
from trending_arxiv.kafka import ensure_topics
from trending_arxiv.retry import Stopped
from trending_arxiv.settings import CommonSettings

pytestmark = pytest.mark.integration


def _fill(kafka: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for number in range(count):
        producer.send(topic, key=str(number).encode(), value=str(number).encode())
    producer.flush()
    producer.close()


def _options(kafka: str, group: str, topic: str, **overrides: object) -> ConsumeOptions:
    values: dict[str, object] = dict(
        bootstrap_servers=kafka,
        group_id=group,
        topics=[topic],
        max_records=10,
        poll_seconds=0.2,
        max_poll_interval_ms=60_000,
        max_retry_seconds=2.0,
    )
    values.update(overrides)
    return ConsumeOptions(**values)  # type: ignore[arg-type]


@pytest.fixture
def topic(stack_endpoints: tuple[str, str], namespace: str) -> str:
    settings = CommonSettings(kafka_bootstrap_servers=stack_endpoints[0], namespace=namespace)
    ensure_topics(settings)
    return settings.topics.alerts  # any topic of the namespace: 4 partitions, ours alone


def test_every_batch_is_written_then_committed(
    stack_endpoints: tuple[str, str], namespace: str, topic: str
) -> None:
    kafka = stack_endpoints[0]
    _fill(kafka, topic, 95)
    seen: list[bytes] = []
    stats = LoopStats()
    loop = ConsumeLoop(
        _options(kafka, f"{namespace}-loop", topic),
        lambda records: seen.extend(r.value for r in records),
        threading.Event(),
        counts=stats,
    )
    loop.run(idle_exit_seconds=3.0)
    assert sorted(seen) == sorted(str(n).encode() for n in range(95))
    assert stats.batches >= 10  # at most 10 records a batch
    assert group_lag(kafka, f"{namespace}-loop", [topic]) == 0


def test_a_batch_stopped_midway_is_not_committed(
    stack_endpoints: tuple[str, str], namespace: str, topic: str
) -> None:
    kafka = stack_endpoints[0]
    _fill(kafka, topic, 30)
    stop = threading.Event()

    def write(records: list[ConsumerRecord]) -> None:
        stop.set()  # asked to stop while the first batch is in hand
        raise Stopped("stopped")

    ConsumeLoop(_options(kafka, f"{namespace}-stop", topic), write, stop).run(10.0)
    assert group_lag(kafka, f"{namespace}-stop", [topic]) == 30  # nothing committed

    seen: list[bytes] = []
    ConsumeLoop(
        _options(kafka, f"{namespace}-stop", topic),
        lambda records: seen.extend(r.value for r in records),
        threading.Event(),
    ).run(idle_exit_seconds=3.0)
    assert len(seen) == 30  # all of it came again
    assert group_lag(kafka, f"{namespace}-stop", [topic]) == 0


def test_commits_failing_in_a_row_make_it_leave_and_rejoin(
    stack_endpoints: tuple[str, str], namespace: str, topic: str
) -> None:
    kafka = stack_endpoints[0]
    _fill(kafka, topic, 40)
    slow_batches = 2
    seen: list[bytes] = []

    def write(records: list[ConsumerRecord]) -> None:
        nonlocal slow_batches
        seen.extend(r.value for r in records)
        if slow_batches:
            # Longer than max_poll_interval_ms: the client leaves the group, so the
            # commit after this batch fails.
            slow_batches -= 1
            time.sleep(4.0)

    stats = LoopStats()
    loop = ConsumeLoop(
        _options(
            kafka,
            f"{namespace}-stall",
            topic,
            max_poll_interval_ms=2_000,
            stalled_commit_seconds=0.1,
        ),
        write,
        threading.Event(),
        counts=stats,
    )
    loop.run(idle_exit_seconds=5.0)
    assert stats.rejoins >= 1
    assert set(seen) == {str(n).encode() for n in range(40)}  # redone batches included
    assert group_lag(kafka, f"{namespace}-stall", [topic]) == 0
