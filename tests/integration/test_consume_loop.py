"""sinks.consume_loop on the real Kafka: commits after each written batch, redoes a batch
whose write was stopped, and leaves and rejoins the group when commits keep failing; the
overlapped loop prepares a batch while the one before is sent, and commits each batch's
own offsets once it is sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from sinks.consume_loop import ConsumeLoop, ConsumeOptions, LoopStats, OverlappedConsumeLoop
from tests.integration.pipeline import group_lag
from trending_arxiv.kafka import ensure_topics
from trending_arxiv.retry import Stopped
from trending_arxiv.settings import CommonSettings

pytestmark = pytest.mark.integration


def _fill(kafka: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for number in range(count):
        # Zero-padded: a partition's values sort as its offsets do.
        producer.send(topic, key=str(number).encode(), value=f"{number:04}".encode())
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


def _consume_rest(kafka: str, group: str, topic: str) -> list[bytes]:
    """What the group has not committed yet, read by a plain loop (which commits it)."""
    seen: list[bytes] = []
    ConsumeLoop(
        _options(kafka, group, topic),
        lambda records: seen.extend(r.value for r in records),
        threading.Event(),
    ).run(idle_exit_seconds=3.0)
    return seen


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
    assert sorted(seen) == [f"{n:04}".encode() for n in range(95)]
    assert stats.batches >= 10  # at most 10 records a batch
    assert group_lag(kafka, f"{namespace}-loop", [topic]) == 0


def test_batches_of_large_records_are_bounded_by_bytes(
    stack_endpoints: tuple[str, str], namespace: str, topic: str
) -> None:
    """Envelopes are records of up to 256 KB: a batch holds at most `max_batch_bytes`
    of them once one is seen, not `max_records`; every record still comes."""
    kafka = stack_endpoints[0]
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for number in range(40):
        producer.send(topic, value=f"{number:04}".encode() + b"x" * 100_000)
    producer.flush()
    producer.close()
    batches: list[list[bytes]] = []
    loop = ConsumeLoop(
        _options(kafka, f"{namespace}-bytes", topic, max_records=10, max_batch_bytes=250_000),
        lambda records: batches.append([r.value[:4] for r in records]),
        threading.Event(),
    )
    loop.run(idle_exit_seconds=3.0)
    assert sorted(v for batch in batches for v in batch) == [f"{n:04}".encode() for n in range(40)]
    assert all(1 <= len(batch) <= 2 for batch in batches), [len(b) for b in batches]


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

    assert len(_consume_rest(kafka, f"{namespace}-stop", topic)) == 30  # all of it again
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
    assert set(seen) == {f"{n:04}".encode() for n in range(40)}  # redone batches included
    assert group_lag(kafka, f"{namespace}-stall", [topic]) == 0


def test_overlapped_batches_are_prepared_while_sent_and_committed_in_order(
    stack_endpoints: tuple[str, str], namespace: str, topic: str
) -> None:
    kafka = stack_endpoints[0]
    _fill(kafka, topic, 95)
    prepared = threading.Semaphore(0)
    sent: list[tuple[int, bytes]] = []
    overlapped: list[bool] = []

    def prepare(records: list[ConsumerRecord]) -> Callable[[], None]:
        values = [(r.partition, r.value) for r in records]  # on the loop's thread
        prepared.release()

        def send() -> None:
            if not overlapped:
                # The first send waits for the next batch to be prepared meanwhile (a
                # loop that prepared only after a send returned would time out here).
                prepared.acquire()
                overlapped.append(prepared.acquire(timeout=5.0))
            sent.extend(values)

        return send

    stats = LoopStats()
    loop = OverlappedConsumeLoop(
        _options(kafka, f"{namespace}-overlap", topic), prepare, threading.Event(), stats
    )
    loop.run(idle_exit_seconds=3.0)
    assert overlapped == [True]
    assert sorted(value for _, value in sent) == [f"{n:04}".encode() for n in range(95)]
    for partition in {p for p, _ in sent}:  # each partition's records sent in its order
        values = [value for p, value in sent if p == partition]
        assert values == sorted(values)
    assert stats.batches >= 10
    assert group_lag(kafka, f"{namespace}-overlap", [topic]) == 0


def test_overlapped_send_stopped_leaves_its_batch_and_the_next_uncommitted(
    stack_endpoints: tuple[str, str], namespace: str, topic: str
) -> None:
    kafka = stack_endpoints[0]
    _fill(kafka, topic, 30)
    stop = threading.Event()
    batches: list[int] = []

    def prepare(records: list[ConsumerRecord]) -> Callable[[], None]:
        batches.append(len(records))
        number = len(batches)

        def send() -> None:
            if number == 2:  # asked to stop while the second batch is being sent
                stop.set()
                raise Stopped("stopped")

        return send

    OverlappedConsumeLoop(_options(kafka, f"{namespace}-ostop", topic), prepare, stop).run(10.0)
    # The first batch is committed; the second (stopped) and the third (prepared) are not.
    assert group_lag(kafka, f"{namespace}-ostop", [topic]) == 30 - batches[0]

    assert len(_consume_rest(kafka, f"{namespace}-ostop", topic)) == 30 - batches[0]
    assert group_lag(kafka, f"{namespace}-ostop", [topic]) == 0
