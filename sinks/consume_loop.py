"""One Kafka consume loop for the sinks: poll a batch, write it, commit, rejoin when stuck.

Shared by the Elasticsearch sink and the alert deliverer. The contract is that of a
quix-streams sink (`BaseSink`: write the batch, and only once it is durable are its
offsets committed):

* `write(records)` returns once every record of the batch is handled for good (written,
  or dead-lettered); it raises `Stopped` when the process is asked to stop before that,
  and the batch is then not committed: it comes again, and deterministic ids make the
  redo harmless.
* Offsets are committed after each written batch. While Kafka is down the commit is
  retried; a commit lost to a rebalance is logged and the batch is redone by whoever
  gets its partitions. When commits keep failing while records keep coming for
  `stalled_commit_seconds` (a rebalance that never completes), the loop leaves the group
  and joins afresh.
* A Kafka that is down at start, or between a leave and a join, is waited for.

`OverlappedConsumeLoop` splits the write in two: `prepare(records)` (reading, decoding,
building: CPU) runs on the loop's thread and returns the batch's `send` (waiting on the
destination), which runs on a writer thread while the loop polls and prepares the next
batch. One send is in flight at a time, so batches reach the destination in order; each
batch's own offsets are committed once its send returned. The Elasticsearch sink spent
a third of its time building documents while Elasticsearch waited for them, and the
rest waiting for Elasticsearch while its own core idled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)
from kafka.structs import OffsetAndMetadata, TopicPartition

from trending_arxiv.kafka import subscribe_with_metadata
from trending_arxiv.retry import Stopped, call_until_available

log = logging.getLogger(__name__)

# Errors of a commit that may pass once Kafka answers again; other KafkaErrors mean the
# group took the partitions away (the batch is redone, harmlessly).
COMMIT_RETRYABLE: tuple[type[BaseException], ...] = (
    KafkaConnectionError,
    NodeNotReadyError,
    KafkaTimeoutError,
    RequestTimedOutError,
)


def _records(polled: dict[TopicPartition, list[ConsumerRecord]]) -> list[ConsumerRecord]:
    return [record for batch in polled.values() for record in batch]


WriteBatch = Callable[[list[ConsumerRecord]], None]
# Prepares a batch on the loop's thread; returns its send, run on the writer thread.
PrepareBatch = Callable[[list[ConsumerRecord]], Callable[[], None]]


@dataclass(frozen=True)
class ConsumeOptions:
    """Where to read and how: the consumer group, its topics and the batch shape."""

    bootstrap_servers: str
    group_id: str
    topics: Sequence[str]
    max_records: int
    poll_seconds: float
    # How long the group waits for a member between polls before evicting it.
    max_poll_interval_ms: int
    metadata_max_age_ms: int | None = None
    max_retry_seconds: float = 60.0
    stalled_commit_seconds: float = 45.0
    # About how many bytes of record values a batch holds, at most `max_records`
    # records: a record may be an envelope of hundreds of items (None: records only).
    max_batch_bytes: int | None = None


class LoopCounts(Protocol):
    batches: int
    rejoins: int


@dataclass
class LoopStats:
    batches: int = 0
    rejoins: int = 0


class ConsumeLoop:
    """Poll, `write`, commit until stopped (or idle); see the module doc."""

    def __init__(
        self,
        options: ConsumeOptions,
        write: WriteBatch,
        stop_event: threading.Event,
        counts: LoopCounts | None = None,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.options = options
        self.write = write
        self.stop_event = stop_event
        self.counts: LoopCounts = counts if counts is not None else LoopStats()
        #: Called after a poll that brought nothing (caught up with the topics).
        self.on_idle = on_idle
        self._largest = 0  # the largest record value seen yet (bytes)

    def _poll(self, consumer: KafkaConsumer) -> list[ConsumerRecord]:
        """One batch: at most `max_records` records and, with `max_batch_bytes`, about
        that many bytes of values (polled in chunks until it is full or nothing more is
        buffered).

        A record may be one mention, a counts update (~350 bytes) or an envelope of
        hundreds of mentions (up to 256 KB): a backlog polled 1,000 records at a time
        made batches of up to 42 MB and 111k bulk operations, and the sink peaked at
        1.4-1.9 GB behind two workers (378 MB with 50-record polls, as fast).
        """
        options = self.options
        budget = options.max_batch_bytes
        timeout_ms = int(options.poll_seconds * 1000)
        if budget is None:
            return _records(consumer.poll(timeout_ms=timeout_ms, max_records=options.max_records))
        records: list[ConsumerRecord] = []
        size, room = 0, options.max_records
        # Polled in chunks that fit in what is left if every record were as large as the
        # largest seen yet (before any is seen: one record).
        chunk = 1 if not self._largest else max(1, min(room, budget // self._largest))
        while chunk > 0:
            polled = _records(consumer.poll(timeout_ms=timeout_ms, max_records=chunk))
            if not polled:
                break
            records.extend(polled)
            sizes = [len(r.value or b"") for r in polled]
            size, self._largest = size + sum(sizes), max(self._largest, *sizes, 1)
            timeout_ms = 0  # the rest of the batch: only what is already buffered
            room = options.max_records - len(records)
            chunk = max(0, min(room, (budget - size) // self._largest))
        return records

    def consumer(self) -> KafkaConsumer:
        """A consumer of the group, subscribed (manual commits, from the earliest offset)."""
        extra: dict[str, Any] = {}
        if self.options.metadata_max_age_ms is not None:
            extra["metadata_max_age_ms"] = self.options.metadata_max_age_ms
        consumer = KafkaConsumer(
            bootstrap_servers=self.options.bootstrap_servers,
            group_id=self.options.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.options.max_records,
            max_poll_interval_ms=self.options.max_poll_interval_ms,
            **extra,
        )
        try:
            subscribe_with_metadata(consumer, list(self.options.topics))
        except TimeoutError as error:
            consumer.close(autocommit=False)
            raise KafkaTimeoutError(str(error)) from error
        return consumer

    def _join(self) -> KafkaConsumer:
        return call_until_available(
            self.consumer, "Kafka", (KafkaError,), self.stop_event, self.options.max_retry_seconds
        )

    def commit(
        self,
        consumer: KafkaConsumer,
        offsets: dict[TopicPartition, OffsetAndMetadata] | None = None,
    ) -> bool:
        """Commit what was written (`offsets`, else the consumer's positions), waiting for a
        Kafka that is down; whether it went through."""
        try:
            call_until_available(
                lambda: consumer.commit(offsets), "Kafka (offset commit)", COMMIT_RETRYABLE,
                self.stop_event, self.options.max_retry_seconds,
            )  # fmt: skip
        except KafkaError as error:
            # A rebalance (CommitFailedError, RebalanceInProgressError, ...) took the
            # partitions away: whoever gets them redoes the batch, harmlessly.
            log.warning("offset commit failed (%s); the batch will be redone", error)
            return False
        return True

    def run(self, idle_exit_seconds: float | None = None) -> None:
        """Consume until stopped (or idle for `idle_exit_seconds`, for tools and tests)."""
        try:
            consumer = self._join()
        except Stopped:
            return
        try:
            while self._consume(consumer, idle_exit_seconds) == "stalled":
                # Leave the group (the stale membership goes with it) and join afresh.
                log.warning(
                    "no offset commit for %.0fs while records keep coming; rejoining the group",
                    self.options.stalled_commit_seconds,
                )
                self.counts.rejoins += 1
                consumer.close(autocommit=False)
                consumer = self._join()
        except Stopped:
            log.info("stopped while Kafka or the batch's destination was unavailable")
        finally:
            consumer.close(autocommit=False)

    def _consume(
        self, consumer: KafkaConsumer, idle_exit_seconds: float | None
    ) -> Literal["stopped", "idle", "stalled"]:
        """Poll, write, commit; returns why it stopped."""
        last_data = time.monotonic()
        failing = _FailingCommits(self.options.stalled_commit_seconds)
        while not self.stop_event.is_set():
            records = self._poll(consumer)
            if not records:
                if self._idle(last_data, idle_exit_seconds):
                    return "idle"
                continue
            last_data = time.monotonic()
            self.write(records)
            if failing.stalled(self.commit(consumer)):
                return "stalled"
            self.counts.batches += 1
        return "stopped"

    def _idle(self, last_data: float, idle_exit_seconds: float | None) -> bool:
        """After a poll that brought nothing: whether it is time to leave."""
        if self.on_idle is not None:
            self.on_idle()
        return idle_exit_seconds is not None and time.monotonic() - last_data >= idle_exit_seconds


class _FailingCommits:
    """Offset commits failing in a row: stalled once they have failed for `limit` seconds."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.since: float | None = None  # the first of the failures in a row

    def stalled(self, committed: bool) -> bool:
        if committed:
            self.since = None
            return False
        if self.since is None:
            self.since = time.monotonic()
            return False
        return time.monotonic() - self.since > self.limit


def next_offsets(records: list[ConsumerRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit once `records` are written: past the last of each partition."""
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        if tp not in offsets or offsets[tp].offset <= record.offset:
            offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
    return offsets


_InFlight = tuple[Future[None], dict[TopicPartition, OffsetAndMetadata]]


class OverlappedConsumeLoop(ConsumeLoop):
    """`ConsumeLoop` whose batches are prepared while the previous one is being sent
    (see the module doc)."""

    def __init__(
        self,
        options: ConsumeOptions,
        prepare: PrepareBatch,
        stop_event: threading.Event,
        counts: LoopCounts | None = None,
    ) -> None:
        super().__init__(options, lambda records: prepare(records)(), stop_event, counts)
        self.prepare = prepare

    def _consume(
        self, consumer: KafkaConsumer, idle_exit_seconds: float | None
    ) -> Literal["stopped", "idle", "stalled"]:
        last_data = time.monotonic()
        failing = _FailingCommits(self.options.stalled_commit_seconds)
        in_flight: _InFlight | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-send") as writer:
            try:
                while not self.stop_event.is_set():
                    records = self._poll(consumer)
                    send = self.prepare(records) if records else None  # while one is sent
                    if in_flight is not None:
                        sent, in_flight = in_flight, None
                        if failing.stalled(self._finish(consumer, sent)):
                            return "stalled"
                    if send is not None:
                        last_data = time.monotonic()
                        in_flight = (writer.submit(send), next_offsets(records))
                    elif self._idle(last_data, idle_exit_seconds):
                        return "idle"
                if in_flight is not None:  # stopped: committed if it was sent all the same
                    sent, in_flight = in_flight, None
                    self._finish(consumer, sent)
                return "stopped"
            finally:
                if in_flight is not None:
                    # Left with a batch in flight (stalled, or an error): its send ends on
                    # its own (a stop ends its retries); uncommitted, the batch comes again.
                    in_flight[0].exception()

    def _finish(self, consumer: KafkaConsumer, in_flight: _InFlight) -> bool:
        """Wait for a batch's send, then commit its offsets; whether the commit went
        through. Raises what the send raised (`Stopped`: the batch is not committed)."""
        sent, offsets = in_flight
        sent.result()
        committed = self.commit(consumer, offsets)
        self.counts.batches += 1
        return committed
