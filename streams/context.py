"""What the worker's agents and timers share: tables, the ledger, stream time, sends."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, cast

import faust
from faust.types import EventT

from streams.direct_table import DirectTable, key_partition
from streams.offsets import InOrder
from streams.tables import StreamTables
from streams.topics import StreamTopics
from trending_arxiv.core.alert_book import AlertBook
from trending_arxiv.core.alert_clock import AlertClock
from trending_arxiv.core.alert_log import stored_text
from trending_arxiv.core.clock import Watermark
from trending_arxiv.core.envelope import ENVELOPE_HEADERS, is_envelope, open_envelope, seal
from trending_arxiv.core.ledger import Ledger
from trending_arxiv.core.models import DeadLetter, Mention
from trending_arxiv.core.pipeline import UnpackedSummaries
from trending_arxiv.core.progress import ExpiryClock, RawProgress
from trending_arxiv.core.refresh import RefreshSchedule
from trending_arxiv.settings import WorkerSettings

log = logging.getLogger(__name__)


class Metrics:
    """Counters the worker logs periodically (and a test can read)."""

    def __init__(self) -> None:
        self.values: dict[str, int] = defaultdict(int)

    def add(self, name: str, amount: int = 1) -> None:
        if amount:
            self.values[name] += amount

    def snapshot(self) -> dict[str, int]:
        return dict(self.values)


class _PartitionBuffers:
    """Items per partition, each partition's sent as one record once it reaches
    `max_bytes` (by the sizes the caller gives)."""

    # Well under Kafka's default 1 MB record limit.
    max_bytes = 256 * 1024

    def __init__(self) -> None:
        self.items: dict[int, list[Any]] = defaultdict(list)
        self.sizes: dict[int, int] = defaultdict(int)

    def add(self, partition: int, item: Any, size: int) -> bool:
        """Queue `item`; True when its partition's record is full."""
        self.items[partition].append(item)
        self.sizes[partition] += size
        return self.sizes[partition] >= self.max_bytes

    def take(self, partition: int) -> list[Any]:
        self.sizes.pop(partition, None)
        return self.items.pop(partition, None) or []

    def partitions(self) -> list[int]:
        return list(self.items)


class MentionBatcher:
    """Collects a batch's outputs per partition, for one record each: its mentions (on
    their paper's partition) and its routed records (on their join key's).

    Mentions go to the mentions topic as envelopes (`core.envelope`: one mention's JSON
    a line), read by the sink and by the counting agent alike: one Faust event per
    (batch, partition) instead of one per mention (Faust's per-event cost, ~65 µs here,
    dominated the worker). The routed records (reposts waiting for their subject, ~1
    post in 8) go the same way: one envelope per (batch, partition) for the ledger agent.
    """

    def __init__(self, partitions: int, worker: WorkerContext) -> None:
        self.mentions_topic = worker.topics.mentions.get_topic_name()
        self.routed_topic = worker.topics.routed_posts.get_topic_name()
        self.partitions = partitions
        self.worker = worker
        self.mentions = _PartitionBuffers()  # mention JSON lines, one envelope
        self.routed = _PartitionBuffers()  # routed records' JSON lines, one envelope
        # The ledger keys this batch changed, per changelog partition: sent only once the
        # batch's outputs are in Kafka (see `flush`).
        self.ledger_changes: list[tuple[set[str], int]] = []

    async def add(self, mention: Mention) -> None:
        """Queue `mention` for the counting agent and the sink (on its paper's partition)."""
        partition = key_partition(mention.arxiv_id, self.partitions)
        line = mention.to_json_bytes()
        if self.mentions.add(partition, line, len(line) + 1):
            await self._send_mentions(partition)

    async def route(self, partition: int, record: bytes) -> None:
        """Queue a routed record (its JSON) for the ledger on `partition`: its join key's
        (`streams.partitioner.post_key_partition`), as the key would place it."""
        if self.routed.add(partition, record, len(record) + 1):
            await self._send_routed(partition)

    def note_ledger_changes(self, partition: int) -> None:
        """The ledger keys an event just changed, to send on `partition` at `flush`."""
        changed = self.worker.ledger_table.take_changed()
        if changed:
            self.ledger_changes.append((changed, partition))

    async def flush(self) -> None:
        """Send what is pending (before the batch is acknowledged), then the ledger's
        changelog records of the batch.

        Outputs first: the ledger remembers a post as seen, and a post it remembers is
        never emitted again, so its entry may be durable only once the post's mentions
        (and re-routes) are. A crash before that replays the batch with the post unseen
        and emits it again, which every reader dedupes by post id.
        """
        for partition in self.routed.partitions():
            await self._send_routed(partition)
        for partition in self.mentions.partitions():
            await self._send_mentions(partition)
        if self.ledger_changes:
            await self.worker.app.producer.flush()
            changes, self.ledger_changes = self.ledger_changes, []
            await self.worker.ledger_table.flush_keys(changes)

    async def _send_routed(self, partition: int) -> None:
        await self._send_envelope(self.routed, self.routed_topic, partition, "routed")

    async def _send_mentions(self, partition: int) -> None:
        await self._send_envelope(self.mentions, self.mentions_topic, partition, "mentions")

    async def _send_envelope(
        self, buffers: _PartitionBuffers, topic: str, partition: int, kind: str
    ) -> None:
        """Send what `buffers` holds for `partition` as one envelope record."""
        lines = buffers.take(partition)
        if lines:
            self.worker.metrics.add(f"{kind}.envelopes")
            await self.worker.app.producer.send(
                topic, None, seal(lines), partition, None, ENVELOPE_HEADERS
            )


class WorkerContext:
    """The worker's state shared by its agents (streams/*_agent.py) and timers."""

    def __init__(
        self,
        app: faust.App,
        topics: StreamTopics,
        tables: StreamTables,
        settings: WorkerSettings,
        metrics: Metrics,
    ) -> None:
        self.app, self.topics, self.tables = app, topics, tables
        self.settings, self.metrics = settings, metrics
        self.partitions = settings.topic_partitions
        self.watermark = Watermark(idle_after_seconds=settings.watermark_idle_seconds)
        self.rules = settings.alert_rules()
        producer = app.producer
        self.ledger_table = DirectTable(tables.ledger, producer)
        self.ledger = Ledger(
            self.ledger_table, repost_wait_seconds=settings.repost_join_wait_seconds
        )
        self.paper_accounts = DirectTable(tables.paper_accounts, producer)
        # Summaries are stored packed (`stored.pack_summary`); read them through
        # `summaries`, which unpacks a fresh copy per read.
        self.papers = DirectTable(tables.papers, producer)
        self.summaries = UnpackedSummaries(self.papers)
        self.refresh = RefreshSchedule()  # which papers' counts go stale as time passes
        self.refreshed_for: set[Any] = set()  # the assignment `refresh` was filled for
        # Repost expiry across workers (`streams.progress`): the next raw offset parsed,
        # per raw partition; the progress last reported; the reports read.
        self.raw_parsed: dict[int, int] = {}
        self.reported_progress: dict[int, RawProgress] = {}
        self.expiry_clock = ExpiryClock()
        self._raw_owned: set[int] | None = None  # the raw partitions last logged as owned
        self.in_order = InOrder(app)
        # Alerts behind a watermark (`core.alert_clock`, `core.alert_log`): what each
        # writer of mentions promises, noted after its sends, by ledger partition; the
        # promises last sent; the promises read, per mentions partition; each counted
        # mentions partition's alert book (its papers' logs in the `alert_logs` table).
        self.promised_in_place: dict[int, float] = {}
        self.promised_routed: dict[int, float] = {}
        self.parsing = False  # a raw batch is between its first post and its sends
        self.sent_promises: tuple[dict[int, float], dict[int, float]] | None = None
        self.alert_clock = AlertClock(self.partitions)
        self.alert_logs = DirectTable(tables.alert_logs, producer, text_of=stored_text)
        self.alert_books: dict[int, AlertBook] = {}

    def mention_batcher(self) -> MentionBatcher:
        return MentionBatcher(self.partitions, self)

    async def batches(
        self, stream: faust.StreamT[bytes], size: int | None = None
    ) -> AsyncIterator[Sequence[EventT]]:
        """Events in batches: per-batch work (and one table write per key) is cheaper.

        Each partition's in offset order, none missing (`streams.offsets.InOrder`)."""
        settings = self.settings
        taken = cast(faust.Stream, stream).take_events(
            size or settings.batch_size, within=settings.batch_timeout_seconds
        )
        async for events in taken:
            kept = await self.in_order.admit(events)
            if kept:
                yield kept

    async def send(self, topic: faust.TopicT, key: bytes, value: bytes) -> None:
        """Produce one record (partitioned by key, like the producers); no per-send future.

        Straight to the producer: Faust's `Topic.send` costs ~0.2 ms a record here.
        """
        await self.app.producer.send(topic.get_topic_name(), key, value, None, None, None)

    async def dead_letter(
        self,
        stage: str,
        reason: str,
        event: EventT,
        line: bytes | None = None,
        line_number: int | None = None,
    ) -> None:
        """Dead-letter `event`'s record, or with `line_number` that one line of its
        envelope (`line`; the number, 1-based, is noted): the rest of the envelope counts."""
        message = event.message
        if line_number is None or line is None:
            value = message.value
            line = value if isinstance(value, bytes) else bytes(value or b"")
            line_number = None
        record = DeadLetter.from_raw_bytes(
            stage,
            reason,
            line,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            line=line_number,
        )
        self.metrics.add(f"{stage}.dead_letters")
        await self.topics.dead_letter.send(key=message.key, value=record.to_json_bytes())

    def record_lines(self, event: EventT, stage: str) -> Iterator[tuple[bytes, int | None]]:
        """The items of `event`'s record with their envelope line numbers: each line of
        an envelope (counted as `<stage>.envelopes` read), or the record itself (None)."""
        if not is_envelope(event.message.headers):
            yield event.value, None
            return
        self.metrics.add(f"{stage}.envelopes")
        for number, line in enumerate(open_envelope(event.value), start=1):
            yield line, number

    def raw_partitions(self) -> set[int]:
        """The raw-topic partitions this worker owns (not standby copies)."""
        raw_topic = self.topics.raw_posts.get_topic_name()
        return {
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == raw_topic
        }

    def routed_partitions(self) -> set[int]:
        """The routing-topic partitions this worker owns: the ledger partitions it keeps."""
        routed_topic = self.topics.routed_posts.get_topic_name()
        return {
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == routed_topic
        }

    def alert_book(self, partition: int) -> AlertBook:
        """Mentions partition `partition`'s alert book; made on first use, indexing the
        logs the table holds for it (recovered from its changelog)."""
        book = self.alert_books.get(partition)
        if book is None:
            book = self.alert_books[partition] = AlertBook(self.alert_logs)
            book.index(
                [key for key in self.alert_logs if key_partition(key, self.partitions) == partition]
            )
        return book

    def mentions_partitions(self) -> set[int]:
        """The mentions-topic partitions this worker counts (not standby copies)."""
        mentions_topic = self.topics.mentions.get_topic_name()
        return {
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == mentions_topic
        }

    def owns(self) -> Callable[[str], bool]:
        """Whether the partition of a key (join key, arXiv id) is one this worker owns
        (not a standby copy); every topic of the worker is partitioned alike."""
        owned = self.raw_partitions()
        return lambda key: key_partition(key, self.partitions) in owned

    def sync_assignment(self) -> set[int]:
        """Stream time is taken over the raw partitions this worker owns now (returned)."""
        owned = self.raw_partitions()
        if owned != self._raw_owned:
            log.info("this worker owns raw partitions %s", sorted(owned))
            self._raw_owned = owned
        self.watermark.assign(owned)
        return owned
