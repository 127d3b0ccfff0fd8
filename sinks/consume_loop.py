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
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
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

WriteBatch = Callable[[list[ConsumerRecord]], None]


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

    def commit(self, consumer: KafkaConsumer) -> bool:
        """Commit what was written, waiting for a Kafka that is down; whether it went through."""
        try:
            call_until_available(
                consumer.commit, "Kafka (offset commit)", COMMIT_RETRYABLE,
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
        failing_since: float | None = None  # first of the commits failing in a row
        while not self.stop_event.is_set():
            polled = consumer.poll(
                timeout_ms=int(self.options.poll_seconds * 1000),
                max_records=self.options.max_records,
            )
            records = [r for batch in polled.values() for r in batch]
            if not records:
                if self.on_idle is not None:
                    self.on_idle()
                if idle_exit_seconds is not None and (
                    time.monotonic() - last_data >= idle_exit_seconds
                ):
                    return "idle"
                continue
            last_data = time.monotonic()
            self.write(records)
            if self.commit(consumer):
                failing_since = None
            elif failing_since is None:
                failing_since = time.monotonic()
            elif time.monotonic() - failing_since > self.options.stalled_commit_seconds:
                return "stalled"
            self.counts.batches += 1
        return "stopped"
