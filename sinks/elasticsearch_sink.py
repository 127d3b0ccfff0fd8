"""The Elasticsearch sink: mentions and count updates from Kafka, bulk-indexed.

At-least-once plus deterministic `_id`s: offsets are committed only after
Elasticsearch acknowledged the whole batch, and every write is keyed (mention:
post id + arXiv id; paper: arXiv id), so a redelivered batch changes nothing.
Each batch's documents are built while the batch before it is being written
(`OverlappedConsumeLoop`). While Elasticsearch is down the sink stops polling and retries
the batch it is writing (memory stays bounded by two batches: that one and the next,
built), then catches up. Documents Elasticsearch rejects
for good (a 4xx other than 404/409/429) go to the dead-letter topic with the reason.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.helpers import streaming_bulk
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from sinks.catalog import bundled_seed_catalog_path, load_catalog_file
from sinks.consume_loop import ConsumeLoop, ConsumeOptions, OverlappedConsumeLoop
from sinks.indices import ensure_indices
from trending_arxiv.core.alert_clock import is_watermark
from trending_arxiv.core.documents import counts_document, mention_document, metadata_document
from trending_arxiv.core.envelope import is_envelope, open_envelope
from trending_arxiv.core.json_bytes import kept_json
from trending_arxiv.core.models import CountUpdate, DeadLetter, Mention
from trending_arxiv.kafka import ensure_topics
from trending_arxiv.retry import Stopped, call_until_available
from trending_arxiv.settings import SinkSettings

log = logging.getLogger(__name__)

MetadataLookup = Callable[[list[str]], dict[str, dict[str, Any] | None]]
RETRYABLE_STATUSES = {429, 500, 502, 503, 504}
# A bulk request stays well below Elasticsearch's http.max_content_length (100 MB).
BULK_MAX_BYTES = 50 * 1024 * 1024


class _StillBusy(RuntimeError):
    """Elasticsearch is still turning some operations of a batch away (429/5xx)."""


# `filter_path` of a bulk response: what `_bulk` reads of each item.
BULK_RESPONSE_FIELDS = "items.*.status,items.*.error"


def _as_bulk_lines(operation: Any) -> tuple[Any, Any]:
    """An (action, body or None) operation as its two NDJSON lines, serialized with orjson.

    The client passes ready bytes through as they are; its own serializer (the standard
    json module) cost a third more CPU per document than the hand-written bulk loop. The
    helper keeps every line of a request until it is sent: `kept_json`, so that each
    does not pin orjson's buffer of several KB.
    """
    action, body = operation
    return kept_json(action), None if body is None else kept_json(body)


@dataclass
class SinkStats:
    batches: int = 0
    mentions_indexed: int = 0
    mentions_deleted: int = 0
    paper_updates: int = 0
    metadata_written: int = 0
    dead_letters: int = 0
    retries: int = 0
    rejoins: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)


def catalog_lookup(settings: SinkSettings) -> MetadataLookup:
    """Metadata from the configured snapshot file (default: the bundled seed papers)."""
    from pathlib import Path

    path = Path(settings.catalog_path) if settings.catalog_path else bundled_seed_catalog_path()
    catalog = load_catalog_file(path) if path.exists() else {}

    def lookup(arxiv_ids: list[str]) -> dict[str, dict[str, Any] | None]:
        return {i: catalog[i] for i in arxiv_ids if i in catalog}

    return lookup


class ElasticsearchSink:
    """Consumes mentions and counts; writes papers and mentions; see the module doc."""

    def __init__(
        self,
        settings: SinkSettings,
        es: Elasticsearch | None = None,
        metadata_lookup: MetadataLookup | None = None,
    ) -> None:
        self.settings = settings
        self.es = es or Elasticsearch(**settings.elasticsearch_client_kwargs())
        self.lookup = metadata_lookup or catalog_lookup(settings)
        self.stats = SinkStats()
        self.stop_event = threading.Event()
        self._metadata: dict[str, dict[str, Any] | None] = {}
        self._described: set[str] = set()
        self._producer: KafkaProducer | None = None
        # Dead letters come from both the loop's thread (building) and the writer's.
        self._producer_lock = threading.Lock()

    def request_stop(self) -> None:
        """Stop after the batch in hand (it is not committed unless written); signal-safe."""
        self.stop_event.set()

    # -- pure-ish batch building -------------------------------------------------------
    def build_operations(self, records: Iterable[ConsumerRecord]) -> list[tuple[dict, Any]]:
        """Bulk operations (action, body) for a batch; the last count per paper wins."""
        topics = self.settings.topics
        indices = self.settings.indices
        operations: list[tuple[dict, Any]] = []
        latest_counts: dict[str, CountUpdate] = {}
        mentions: list[Mention] = []
        for record in records:
            self.stats.by_topic[record.topic] = self.stats.by_topic.get(record.topic, 0) + 1
            if is_watermark(record.headers):
                continue  # the counting agent's stream time (`core.alert_clock`)
            try:
                if record.topic == topics.mentions and is_envelope(record.headers):
                    mentions.extend(self._envelope_mentions(record))
                elif record.topic == topics.mentions:
                    mentions.append(Mention.from_json(record.value))
                elif record.topic == topics.counts:
                    # The last in the partition's order wins, as across batches: it is
                    # the owner's latest state. (Not the newest `as_of`: two workers'
                    # stream times differ, so after a rebalance the previous owner's last
                    # update, with fewer posts, can carry the later `as_of`.)
                    update = CountUpdate.from_json(record.value)
                    latest_counts[update.arxiv_id] = update
            except (ValueError, KeyError, TypeError) as error:
                self._dead_letter(
                    "sink",
                    f"unreadable record: {error}",
                    record.value,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                )
        new_ids = {m.arxiv_id for m in mentions} | set(latest_counts)
        self._describe(sorted(new_ids - self._described), operations)
        for mention in mentions:
            if mention.op == "add":
                doc = mention_document(mention, self._metadata.get(mention.arxiv_id))
                operations.append(
                    ({"index": {"_index": indices.mentions, "_id": mention.document_id}}, doc)
                )
            else:
                operations.append(
                    ({"delete": {"_index": indices.mentions, "_id": mention.document_id}}, None)
                )
        for arxiv_id, update in latest_counts.items():
            operations.append(
                (
                    {"update": {"_index": indices.papers, "_id": arxiv_id}},
                    {"doc": counts_document(update), "doc_as_upsert": True},
                )
            )
        return operations

    def _envelope_mentions(self, record: ConsumerRecord) -> list[Mention]:
        """The mentions of an envelope (the worker's); a bad line is dead-lettered alone."""
        mentions: list[Mention] = []
        for number, line in enumerate(open_envelope(record.value), start=1):
            try:
                mentions.append(Mention.from_json(line))
            except (ValueError, KeyError, TypeError) as error:
                self._dead_letter(
                    "sink",
                    f"unreadable mention: {error}",
                    line,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    line=number,
                )
        return mentions

    def _describe(self, arxiv_ids: list[str], operations: list[tuple[dict, Any]]) -> None:
        """Metadata for papers this process hasn't described yet (never blocks counting)."""
        if not arxiv_ids:
            return
        try:
            found = self.lookup(arxiv_ids)
        except Exception as error:  # metadata lags must never block counting
            log.warning("metadata lookup failed for %d papers: %s", len(arxiv_ids), error)
            return
        for arxiv_id in arxiv_ids:
            if arxiv_id not in found:
                continue
            metadata = found[arxiv_id]
            self._metadata[arxiv_id] = metadata
            self._described.add(arxiv_id)
            operations.append(
                (
                    {"update": {"_index": self.settings.indices.papers, "_id": arxiv_id}},
                    {"doc": metadata_document(arxiv_id, metadata), "doc_as_upsert": True},
                )
            )
            self.stats.metadata_written += 1

    # -- Elasticsearch writes with retries ---------------------------------------------
    def write(self, operations: list[tuple[dict, Any]]) -> None:
        """Bulk-write until every operation is acknowledged or rejected for good.

        `streaming_bulk` sends the batch (cut by count and bytes); operations Elasticsearch
        turned away as busy (429/5xx), or a whole request that failed (Elasticsearch down),
        are retried by tenacity with back-off up to `sink_max_retry_seconds`, for as long
        as it takes. A stop request ends the wait with `Stopped` (the batch is then not
        committed). The helper's own retries (`max_retries`, `retry_on_status`) are not
        used: they yield a retried item's result out of order and without its document,
        which a dead letter needs (and two updates of one paper in a batch share their
        action line), and they wait in `time.sleep`, deaf to a stop request.
        """
        pending = operations
        retrying = Retrying(
            retry=retry_if_exception_type((TransportError, ApiError, _StillBusy)),
            wait=wait_exponential(multiplier=0.5, max=self.settings.sink_max_retry_seconds),
            before_sleep=self._before_retry,
            sleep=self._sleep_unless_stopped,
        )
        for attempt in retrying:
            with attempt:
                pending = self._bulk(pending)
                if pending:
                    raise _StillBusy(f"Elasticsearch busy for {len(pending)} operations")

    def _bulk(self, operations: list[tuple[dict, Any]]) -> list[tuple[dict, Any]]:
        """One pass through `streaming_bulk`; returns the operations to send again."""
        outcomes = streaming_bulk(
            self.es,
            cast(list[Any], operations),  # (action, body) pairs, expanded as they are
            # The whole batch (sink_batch_size records) in one request unless it is big.
            chunk_size=max(1, len(operations)),
            max_chunk_bytes=BULK_MAX_BYTES,
            expand_action_callback=_as_bulk_lines,
            raise_on_error=False,
            refresh=False,
            # Only what is read back: each item's status (and error). The whole response
            # (~250 bytes an item) cost the sink more CPU to decode than its documents.
            filter_path=BULK_RESPONSE_FIELDS,
        )
        # One result per operation, in order; counted once the pass went through (a pass
        # that raised is redone whole, under the same _ids).
        results = [next(iter(item.items())) for _ok, item in outcomes]
        retry: list[tuple[dict, Any]] = []
        for (action, doc), (op, result) in zip(operations, results, strict=True):
            status = result.get("status", 500)
            if status < 300 or (op == "delete" and status == 404):
                self._count_success(op)
            elif status in RETRYABLE_STATUSES:
                retry.append((action, doc))
            else:
                reason = json.dumps(result.get("error"))[:2000]
                self._dead_letter(
                    "sink",
                    f"Elasticsearch rejected {op} ({status}): {reason}",
                    json.dumps({"action": action, "doc": doc}).encode(),
                )
        return retry

    def _before_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("Elasticsearch unavailable (%s); retrying in %.1fs", error, wait)

    def _sleep_unless_stopped(self, seconds: float) -> None:
        if self.stop_event.wait(seconds):
            raise Stopped("stopped while Elasticsearch was unavailable")

    def _count_success(self, op: str) -> None:
        if op == "index":
            self.stats.mentions_indexed += 1
        elif op == "delete":
            self.stats.mentions_deleted += 1
        else:
            self.stats.paper_updates += 1

    def _dead_letter(self, stage: str, reason: str, raw: bytes, **where: Any) -> None:
        self.stats.dead_letters += 1
        log.error("dead letter (%s): %s", stage, reason)
        record = DeadLetter.from_raw_bytes(stage, reason, raw, **where)
        with self._producer_lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.settings.kafka_bootstrap_servers, acks="all"
                )
            producer = self._producer
        producer.send(self.settings.topics.dead_letter, value=record.to_json_bytes())
        producer.flush()

    # -- the consume loop ---------------------------------------------------------------
    def consume_loop(self) -> ConsumeLoop:
        """Mentions and counts, in batches of `sink_batch_size`, committed once written."""
        settings = self.settings
        options = ConsumeOptions(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=f"{settings.namespace}-{settings.sink_group_id}",
            topics=[settings.topics.mentions, settings.topics.counts],
            max_records=settings.sink_batch_size,
            max_batch_bytes=settings.sink_batch_bytes,
            poll_seconds=settings.sink_flush_seconds,
            # A rebalance waits at most this long for a member that does not rejoin
            # (kafka-python's 5 min default would stall the whole group that long).
            max_poll_interval_ms=60_000,
            metadata_max_age_ms=2000,
            max_retry_seconds=settings.sink_max_retry_seconds,
            stalled_commit_seconds=settings.sink_stalled_commit_seconds,
        )
        return OverlappedConsumeLoop(options, self.prepare_batch, self.stop_event, self.stats)

    def prepare_batch(self, records: list[ConsumerRecord]) -> Callable[[], None]:
        """Build one polled batch's operations; returns their write (which the loop runs
        while it builds the next batch, and commits the batch after)."""
        operations = self.build_operations(records)
        return lambda: self.write(operations) if operations else None

    def run(self, idle_exit_seconds: float | None = None) -> SinkStats:
        """Consume until stopped (or idle for `idle_exit_seconds`, for tools and tests)."""
        try:
            self._prepare(self.settings.sink_max_retry_seconds)
        except Stopped:
            return self.stats
        try:
            self.consume_loop().run(idle_exit_seconds)
        finally:
            if self._producer is not None:
                self._producer.close()
        return self.stats

    def _prepare(self, wait: float) -> None:
        """Indices and topics, waiting for Elasticsearch and Kafka when they are down."""
        call_until_available(
            lambda: ensure_indices(self.es, self.settings, self.settings.sink_refresh_interval),
            "Elasticsearch", (TransportError, ApiError), self.stop_event, wait,
        )  # fmt: skip
        call_until_available(
            lambda: ensure_topics(self.settings), "Kafka", (KafkaError, TimeoutError),
            self.stop_event, wait,
        )  # fmt: skip
