"""Write raw payloads to the raw-posts topic, unmodified, without ever dropping one.

kafka-python's `KafkaProducer` with `acks="all"` and idempotence (its default against
Kafka >= 0.11). On top of it:
- back-pressure: at most `kafka_max_pending` unacknowledged records; `send` blocks beyond;
- hold and retry: if Kafka is down, connecting and `send` wait and retry (logging why)
  instead of raising; records whose delivery failed with a retriable error are re-sent;
- checkpoints: an `AckTracker` learns of every acknowledgement, so producers only persist
  positions Kafka has confirmed;
- envelopes (`kafka_envelopes`, on by default): posts are grouped per target partition
  (murmur2 of the post key, as Kafka places single posts) and source into NDJSON envelopes
  of up to `kafka_envelope_max_posts` posts / `kafka_envelope_max_bytes`, sent when full or
  after `kafka_envelope_linger_ms`; an envelope's acknowledgement acknowledges each of its
  posts. Off: one post per record, as before. A post that cannot travel in an envelope
  (holds a newline, is blank, or is too big) goes alone as a plain record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from producers.checkpoint import AckTracker
from producers.envelopes import EnvelopeBatcher, OpenEnvelope
from producers.metrics import ProducerMetrics
from producers.settings import ProducerSettings
from trending_arxiv.core.envelope import ENVELOPE_HEADERS
from trending_arxiv.core.models import to_utc_iso
from trending_arxiv.kafka import partition_of_once

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 4 * 1024 * 1024


class WriterStopped(RuntimeError):
    """Raised by a blocked `send`/connect when the stop event is set (shutdown)."""


def _kafka_unavailable(error: BaseException) -> bool:
    """Kafka down or not reachable yet (worth waiting for)."""
    if isinstance(error, KafkaError):
        return bool(error.retriable)
    return isinstance(error, OSError)


@dataclass(slots=True)
class _Record:
    """One Kafka record in flight: a single post, or an envelope of `seqs` posts."""

    seqs: list[int]
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int | None = None  # set for envelopes (their posts' partition)

    @property
    def ident(self) -> int:
        return self.seqs[0]  # sequence numbers are unique: the first names the record


def _headers(source: str, fetched_at: datetime) -> list[tuple[str, bytes]]:
    return [("source", source.encode()), ("fetched_at", to_utc_iso(fetched_at).encode())]


class RawPostWriter:
    """Sends raw payloads keyed by post id with `source` and `fetched_at` headers, in
    envelopes (the headers then say the envelope's source and its oldest post's fetch
    time) unless `kafka_envelopes` is off."""

    def __init__(
        self,
        settings: ProducerSettings,
        metrics: ProducerMetrics,
        tracker: AckTracker | None = None,
        stop: threading.Event | None = None,
        client_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.topic = settings.topics.raw_posts
        self.metrics = metrics
        self.tracker = tracker or AckTracker()
        self.stop = stop or threading.Event()
        self.client_id = client_id or f"trending-arxiv-{metrics.source}"
        self.rejected = 0
        self._lock = threading.Lock()
        self._pending: dict[int, _Record] = {}
        self._pending_posts = 0
        self._failed: deque[_Record] = deque()
        self._producer: KafkaProducer | None = None
        self.batcher: EnvelopeBatcher | None = (
            EnvelopeBatcher(
                settings.kafka_envelope_max_posts,
                settings.kafka_envelope_max_bytes,
                settings.kafka_envelope_linger_ms / 1000,
            )
            if settings.kafka_envelopes
            else None
        )
        # Held while sealing and handing envelopes to Kafka's client, so the envelopes of
        # one partition enter it in the order their posts were read.
        self._envelope_lock = threading.Lock()
        self._partitions = 0
        self._linger_stop = threading.Event()
        self._linger_thread: threading.Thread | None = None

    # -- connection -----------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        compression = self.settings.kafka_compression
        return {
            "bootstrap_servers": self.settings.kafka_bootstrap_servers.split(","),
            "client_id": self.client_id,
            "acks": "all",
            "enable_idempotence": True,
            "compression_type": None if compression == "none" else compression,
            "linger_ms": self.settings.kafka_linger_ms,
            # The 16 KB default holds about 16 posts; bigger batches mean far fewer requests.
            "batch_size": 512 * 1024,
            # Keep retrying inside the client for 2 minutes; after that we re-send ourselves.
            "retries": 2**31 - 1,
            "delivery_timeout_ms": 120_000,
            # Short enough that a blocked send logs why it is waiting.
            "max_block_ms": 10_000,
            "max_request_size": MAX_RECORD_BYTES,
        }

    def _wait(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise WriterStopped("stopped while waiting for Kafka")

    def connect(self) -> KafkaProducer:
        """Connect (waiting for Kafka as long as it takes) and make sure the topic exists."""
        if self._producer is None:
            retrying = Retrying(
                # A KafkaError that is not retriable is a configuration problem: waiting
                # will not help, so it goes up at once (as does WriterStopped).
                retry=retry_if_exception(_kafka_unavailable),
                wait=wait_exponential(multiplier=1.0, max=30.0),  # 1, 2, 4 ... 30 s
                before_sleep=self._log_unavailable,
                sleep=self._wait,
                reraise=True,
            )
            self._producer = retrying(self._connect_once)
        return self._producer

    def _connect_once(self) -> KafkaProducer:
        if self.stop.is_set():
            raise WriterStopped("stopped before Kafka was reachable")
        self._ensure_topic()
        producer = KafkaProducer(**self._config())
        if self.batcher is not None:
            # Blocks (max_block_ms) until the topic's metadata is known.
            self._partitions = len(producer.partitions_for(self.topic))
            self._start_linger()
        return producer

    def _log_unavailable(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.metrics.add_error("kafka_unavailable")
        log.warning(
            "Kafka at %s unavailable (%s); retrying in %.0fs",
            self.settings.kafka_bootstrap_servers,
            type(error).__name__,
            wait,
        )

    def _ensure_topic(self) -> None:
        admin = KafkaAdminClient(
            bootstrap_servers=self.settings.kafka_bootstrap_servers.split(","),
            client_id=f"{self.client_id}-admin",
            # Give up on a dead cluster soon, so `connect` logs and can be stopped.
            bootstrap_timeout_ms=5_000,
        )
        try:
            if self.topic in set(admin.list_topics()):
                return
            admin.create_topics(
                {
                    self.topic: {
                        "num_partitions": self.settings.topic_partitions,
                        "replication_factor": -1,  # the broker's default
                    }
                },
                wait_for_metadata=True,
            )
            log.info("created topic %s (%d partitions)", self.topic, self.settings.topic_partitions)
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()

    # -- sending --------------------------------------------------------------------------

    def send(
        self,
        raw: bytes,
        key: str | None,
        source: str,
        fetched_at: datetime | None = None,
        position: Any = None,
    ) -> None:
        """Queue one payload; returns once Kafka's client (or an open envelope) has it.
        Blocks while `kafka_max_pending` posts await Kafka's acknowledgement."""
        producer = self.connect()
        moment = fetched_at or datetime.now(UTC)
        seq = self.tracker.register(position)
        # surrogatepass: ids decoded from hostile input may hold lone surrogates
        # (json.loads lets them through); the key must still encode, never crash.
        key_bytes = key.encode("utf-8", "surrogatepass") if key is not None else None
        self._resend_failed()
        while self._pending_count() >= self.settings.kafka_max_pending:
            producer.flush(timeout=1.0)
            self._resend_failed()
            if self.stop.is_set() and self._pending_count() >= self.settings.kafka_max_pending:
                break
        batcher = self.batcher
        if batcher is None:
            self._submit(_Record([seq], raw, key_bytes, _headers(source, moment)))
            return
        # Unkeyed posts (not JSON, no id) spread by their bytes; the worker dead-letters
        # or routes them whatever their partition.
        partition = partition_of_once(key_bytes if key_bytes is not None else raw, self._partitions)
        with self._envelope_lock:
            if not batcher.fits(raw):
                # Alone, after the posts of its bucket read before it.
                self._submit_envelopes([batcher.take(partition, source)])
                self._submit(_Record([seq], raw, key_bytes, _headers(source, moment)))
                return
            self._submit_envelopes(
                batcher.add(partition, source, raw, seq, moment, time.monotonic())
            )

    def _submit_envelopes(self, envelopes: Iterable[OpenEnvelope | None]) -> None:
        for envelope in envelopes:
            if envelope is None:
                continue
            # A new list: `+=` on the shared constant grew it by two headers an envelope,
            # and every envelope carried all of them (thousands a record).
            headers = [*ENVELOPE_HEADERS, *_headers(envelope.source, envelope.fetched_at)]
            self._submit(
                _Record(envelope.seqs, envelope.value(), None, headers, envelope.partition)
            )

    def _seal(self, everything: bool) -> None:
        """Send the envelopes past their linger (or all of them)."""
        if self.batcher is None or self._producer is None:
            return
        with self._envelope_lock:
            batcher = self.batcher
            self._submit_envelopes(batcher.drain() if everything else batcher.due(time.monotonic()))

    def _start_linger(self) -> None:
        self._linger_stop.clear()

        def run() -> None:
            # A quarter of the linger: an envelope waits at most 1.25x the linger.
            tick = max(0.005, self.settings.kafka_envelope_linger_ms / 4000)
            while not self._linger_stop.wait(tick):
                try:
                    self._seal(everything=False)
                except Exception:  # never let the linger die: flush/close still drain
                    log.exception("sending lingering envelopes failed")

        self._linger_thread = threading.Thread(target=run, name="envelope-linger", daemon=True)
        self._linger_thread.start()

    def _stop_linger(self) -> None:
        self._linger_stop.set()
        if self._linger_thread is not None:
            self._linger_thread.join(timeout=5)
            self._linger_thread = None

    def skip(self, position: Any) -> None:
        """A record read but not sent (filtered); its position commits with the acked prefix."""
        self.tracker.register(position, acked=True)

    def _pending_count(self) -> int:
        """Posts handed to Kafka's client and not yet acknowledged."""
        with self._lock:
            return self._pending_posts

    def _submit(self, record: _Record) -> None:
        producer = self.connect()
        with self._lock:
            if record.ident not in self._pending:
                self._pending[record.ident] = record
                self._pending_posts += len(record.seqs)
        while True:
            try:
                future = producer.send(
                    self.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                    partition=record.partition,
                )
                break
            except KafkaTimeoutError:
                # Metadata unavailable or buffer full: Kafka is slow or down. Hold, never drop.
                self.metrics.add_error("kafka_blocked")
                log.warning("Kafka not accepting records yet; holding and retrying")
                if self.stop.is_set():
                    # Shutdown: keep the record pending (not acked) so the checkpoint stays put.
                    return
        future.add_callback(self._on_ack, record)
        future.add_errback(self._on_error, record)

    def _forget(self, record: _Record) -> None:
        with self._lock:
            if self._pending.pop(record.ident, None) is not None:
                self._pending_posts -= len(record.seqs)

    def _on_ack(self, record: _Record, _metadata: Any) -> None:
        # Every post of an envelope is acknowledged by its one record.
        self._forget(record)
        self.tracker.ack_many(record.seqs)
        self.metrics.add_sent(len(record.seqs))

    def _on_error(self, record: _Record, exc: BaseException) -> None:
        retriable = isinstance(exc, KafkaError) and exc.retriable
        if retriable:
            self.metrics.add_error("kafka_retry")
            with self._lock:
                self._failed.append(record)
            return
        # The broker will never take this record (e.g. too large): say so, and move on.
        self.metrics.add_error("kafka_rejected")
        log.error(
            "Kafka rejected a record (key=%r, %d posts, %d bytes): %s",
            record.key,
            len(record.seqs),
            len(record.value),
            type(exc).__name__,
        )
        self._forget(record)
        with self._lock:
            self.rejected += len(record.seqs)
        self.tracker.ack_many(record.seqs)

    def _resend_failed(self) -> None:
        while True:
            with self._lock:
                if not self._failed:
                    return
                record = self._failed.popleft()
            self._submit(record)

    def flush(self, timeout: float | None = None) -> bool:
        """Send the open envelopes and wait until every accepted post is acknowledged;
        True if none is left pending."""
        if self._producer is None:
            return True
        self._seal(everything=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._resend_failed()
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self._producer.flush(timeout=remaining if remaining is not None else 5.0)
            except KafkaTimeoutError:
                log.warning(
                    "still waiting for Kafka to acknowledge %d posts", self._pending_count()
                )
            self._resend_failed()
            if self._pending_count() == 0:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush (bounded by `timeout`) and close the client."""
        if self._producer is None:
            return
        self._stop_linger()
        self.flush(timeout)
        self._producer.close(timeout=5)
        self._producer = None

    def __enter__(self) -> RawPostWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
