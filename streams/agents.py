"""Faust agents: thin adapters from topics and tables to the pure core.

    raw posts --parse--> routed posts --ledger--> mentions (one per post and paper, the sink's)
                                           \\--> mention batches --count--> counts, alerts
        \\--> dead letters (anything we cannot parse, with the reason and the raw bytes)

Each agent takes events in batches (`take_events`). Table writes go through
`DirectTable`: each changed key's changelog record goes to the partition of the event
that caused it (the tables stay co-partitioned with their source topics), and outputs
are produced straight to the producer; both are flushed by Faust before it commits.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import faust
import orjson
from faust.types import EventT, ProducerT, TableT
from kafka.partitioner.default import murmur2

from streams.tables import StreamTables
from streams.topics import StreamTopics
from trending_arxiv.core import counting
from trending_arxiv.core.alerting import AlertRules, evaluate
from trending_arxiv.core.clock import StreamClock
from trending_arxiv.core.ledger import PENDING_PREFIX, Ledger, join_key, needs_join, routed_post
from trending_arxiv.core.models import DeadLetter, Mention
from trending_arxiv.core.posts import PostParseError, parse_line
from trending_arxiv.core.refresh import RefreshSchedule
from trending_arxiv.settings import WorkerSettings

log = logging.getLogger(__name__)

# Alert ids are remembered per paper for this long (they carry an hour bucket).
ALERT_MEMORY_SECONDS = 2 * 86400.0


class Metrics:
    """Counters the worker logs periodically (and a test can read)."""

    def __init__(self) -> None:
        self.values: dict[str, int] = defaultdict(int)

    def add(self, name: str, amount: int = 1) -> None:
        if amount:
            self.values[name] += amount

    def snapshot(self) -> dict[str, int]:
        return dict(self.values)


class DirectTable(MutableMapping[str, Any]):
    """A Faust table whose changelog records are produced in one step per changed key.

    `table[key] = value` in Faust queues a changelog record through its per-message
    producer buffer (measured ~0.2 ms each, more than the rest of our per-post work).
    Here writes go to the table's store at once and `flush` sends one record per
    changed key straight to the producer, in the changelog format Faust recovers from
    (JSON key and value, null for a delete). Faust flushes the producer before it
    commits offsets, so a record's changelog is durable before the record counts as
    processed, as with `table[key] = value`.
    """

    def __init__(self, table: TableT, producer: ProducerT) -> None:
        self.store = table.data
        self.topic = table.changelog_topic.get_topic_name()
        self.producer = producer
        self.changed: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        return self.store[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.store[key] = value
        self.changed.add(key)

    def __delitem__(self, key: str) -> None:
        del self.store[key]
        self.changed.add(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.store)

    def __len__(self) -> int:
        return len(self.store)

    async def flush(self, partition: int | Callable[[str], int]) -> None:
        """Send the changed keys to changelog `partition` (their source event's).

        A function instead gives each key's partition (a sweep over many partitions).
        """
        # Taken before the first await: a timer's sweep that runs while a send waits (a
        # full producer buffer) then flushes only its own writes, to its own partitions.
        changed, self.changed = self.changed, set()
        for key in changed:
            value = self.store.get(key)
            encoded = None if value is None else orjson.dumps(value)
            # Faust's Table serializes str keys as JSON too (whatever the schema says).
            target = partition if isinstance(partition, int) else partition(key)
            await self.producer.send(self.topic, orjson.dumps(key), encoded, target, None, None)


def key_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives a record keyed `key`."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class MentionBatcher:
    """Collects a batch's mentions per partition of their paper, for one record each.

    The counting agent then reads one Faust event per (batch, partition) instead of one
    per mention: Faust's per-event cost (~0.2 ms here) dominated the worker.
    """

    # Well under Kafka's default 1 MB record limit.
    max_bytes = 256 * 1024

    def __init__(self, topic: str, partitions: int, producer: ProducerT) -> None:
        self.topic = topic
        self.partitions = partitions
        self.producer = producer
        self.pending: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.sizes: dict[int, int] = defaultdict(int)

    async def add(self, mention: Mention) -> None:
        partition = key_partition(mention.arxiv_id, self.partitions)
        fields = mention.counting_fields()
        self.pending[partition].append(fields)
        self.sizes[partition] += 200 + len(mention.post_id) + len(mention.author_handle or "")
        if self.sizes[partition] >= self.max_bytes:
            await self._send(partition)

    async def flush(self) -> None:
        """Send what is pending (before the batch is acknowledged)."""
        for partition in list(self.pending):
            await self._send(partition)

    async def _send(self, partition: int) -> None:
        mentions = self.pending.pop(partition, None)
        self.sizes.pop(partition, None)
        if mentions:
            value = orjson.dumps({"mentions": mentions})
            await self.producer.send(self.topic, None, value, partition, None, None)


def register_agents(
    app: faust.App,
    topics: StreamTopics,
    tables: StreamTables,
    settings: WorkerSettings,
    metrics: Metrics,
) -> None:
    """Attach the three agents and the two timers (count refresh, repost expiry) to `app`."""
    clock = StreamClock()
    rules = AlertRules(
        min_accounts_1h=settings.alert_min_accounts_1h,
        velocity_ratio=settings.alert_velocity_ratio,
        velocity_min_posts_1h=settings.alert_velocity_min_posts_1h,
    )
    producer = app.producer
    ledger_table = DirectTable(tables.ledger, producer)
    ledger = Ledger(ledger_table, repost_wait_seconds=settings.repost_join_wait_seconds)
    paper_accounts = DirectTable(tables.paper_accounts, producer)
    papers = DirectTable(tables.papers, producer)
    batch, within = settings.batch_size, settings.batch_timeout_seconds

    def mention_batcher() -> MentionBatcher:
        return MentionBatcher(
            topics.mention_batches.get_topic_name(), settings.topic_partitions, producer
        )

    from_raw, from_routed = mention_batcher(), mention_batcher()

    def batches(stream: faust.StreamT[bytes]) -> AsyncIterator[Sequence[EventT]]:
        """Events in batches: per-batch work (and one table write per key) is cheaper."""
        return cast(faust.Stream, stream).take_events(batch, within=within)

    async def send(topic: faust.TopicT, key: bytes, value: bytes) -> None:
        """Produce one record (partitioned by key, like the producers); no per-send future.

        Straight to the producer: Faust's `Topic.send` costs ~0.2 ms a record here.
        """
        await producer.send(topic.get_topic_name(), key, value, None, None, None)

    async def dead_letter(stage: str, reason: str, event: EventT) -> None:
        message = event.message
        record = DeadLetter.from_raw_bytes(
            stage,
            reason,
            message.value if isinstance(message.value, bytes) else bytes(message.value or b""),
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        metrics.add(f"{stage}.dead_letters")
        await topics.dead_letter.send(key=message.key, value=record.to_json_bytes())

    @app.task
    async def declare_output_topics() -> None:
        """Create the topics we only write to, with our partition count, before first use."""
        for topic in (topics.mentions, topics.counts, topics.alerts, topics.dead_letter):
            await topic.maybe_declare()

    @app.agent(topics.raw_posts, name="parse-posts")
    async def parse_posts(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for events in batches(stream):
            for event in events:
                raw = event.value
                try:
                    posts = parse_line(raw)
                except PostParseError as error:
                    await dead_letter("parse", str(error), event)
                    continue
                metrics.add("parse.posts", len(posts))
                for post in posts:
                    if not (post.arxiv_ids or needs_join(post) or post.kind == "delete"):
                        metrics.add("parse.without_papers")
                        continue
                    key = join_key(post)
                    record = routed_post(post)
                    if (
                        settings.ledger_in_place
                        and key_partition(key, settings.topic_partitions) == event.message.partition
                    ):
                        # Already on the partition the ledger keeps this key in (the
                        # producers key raw posts by post id): skip the routing hop.
                        metrics.add("parse.ledger_in_place")
                        await apply_to_ledger(record, event, from_raw)
                        continue
                    await send(topics.routed_posts, key.encode(), orjson.dumps(record))
            await from_raw.flush()
            yield None

    async def apply_to_ledger(
        record: dict[str, Any], event: EventT, batcher: MentionBatcher
    ) -> None:
        """Dedupe/join/delete one routed record; emit its mentions and re-routes.

        `event` must be on the partition of the record's key: the ledger's table
        writes go to that event's changelog partition.
        """
        entry_time = record["post"].get("t")
        if entry_time:
            clock.observe_iso(entry_time)
        result = ledger.apply(record, clock.stream_time or datetime.now(clock.tz))
        await ledger_table.flush(event.message.partition)
        metrics.add("ledger.duplicates", result.duplicates)
        metrics.add("ledger.pending_reposts", result.pending)
        metrics.add("ledger.expired_reposts", result.expired_reposts)
        metrics.add("ledger.deletes", result.deletes)
        metrics.add("ledger.mentions", len(result.mentions))
        for mention in result.mentions:
            await send(topics.mentions, mention.arxiv_id.encode(), mention.to_json_bytes())
            await batcher.add(mention)
        for key, rerouted in result.reroutes:
            await send(topics.routed_posts, key.encode(), orjson.dumps(rerouted))

    @app.agent(topics.routed_posts, name="ledger")
    async def apply_ledger(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for events in batches(stream):
            for event in events:
                try:
                    record = json.loads(event.value)
                    if not isinstance(record.get("post"), dict):
                        raise ValueError("no post object")
                except (ValueError, TypeError, AttributeError) as error:
                    await dead_letter("ledger", f"unreadable routed record: {error}", event)
                    continue
                await apply_to_ledger(record, event, from_routed)
            await from_routed.flush()
            yield None

    refresh = RefreshSchedule()  # which papers' counts go stale as time passes
    refreshed_for: set[Any] = set()  # the assignment `refresh` was filled for

    async def publish_counts(arxiv_id: str, state: dict[str, Any], as_of: datetime) -> None:
        update = counting.count_update(arxiv_id, state, as_of, settings.trend_half_life_hours)
        # Noted before the await: whichever update is sent last is also noted last.
        refresh.note_sent(arxiv_id, as_of)
        await send(topics.counts, arxiv_id.encode(), update.to_json_bytes())
        metrics.add("count.updates")
        fired: dict[str, float] = state.setdefault("alerts", {})
        for alert in evaluate(update, rules):
            if alert.alert_id in fired:
                continue
            fired[alert.alert_id] = as_of.timestamp()
            metrics.add("alerts.published")
            await send(topics.alerts, arxiv_id.encode(), alert.to_json_bytes())
        horizon = as_of.timestamp() - ALERT_MEMORY_SECONDS
        for alert_id in [a for a, moment in fired.items() if moment < horizon]:
            del fired[alert_id]

    @app.agent(topics.mention_batches, name="count-mentions")
    async def count_mentions(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for events in batches(stream):
            by_paper: dict[str, list[tuple[EventT, Mention]]] = defaultdict(list)
            for event in events:
                try:
                    mentions = [Mention.from_json(m) for m in orjson.loads(event.value)["mentions"]]
                except (ValueError, KeyError, TypeError) as error:
                    await dead_letter("count", f"unreadable mention batch: {error}", event)
                    continue
                for mention in mentions:
                    clock.observe(mention.created_at)
                    by_paper[mention.arxiv_id].append((event, mention))
            as_of = clock.stream_time
            for arxiv_id, items in by_paper.items():
                state = papers.get(arxiv_id) or counting.new_paper_state()
                counting.apply_mentions(state, (mention for _, mention in items), paper_accounts)
                assert as_of is not None
                counting.prune(state, as_of)
                await publish_counts(arxiv_id, state, as_of)
                papers[arxiv_id] = state
                # Every mention of a paper comes on the paper's partition (MentionBatcher).
                partition = items[-1][0].message.partition
                await paper_accounts.flush(partition)
                await papers.flush(partition)
            yield None

    def owns() -> Callable[[str], bool]:
        """Whether the partition of a key (join key, arXiv id) is one this worker owns
        (not a standby copy); every topic of the worker is partitioned alike."""
        raw_topic = topics.raw_posts.get_topic_name()
        owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == raw_topic}
        return lambda key: key_partition(key, settings.topic_partitions) in owned

    @app.timer(interval=settings.repost_expiry_check_seconds, name="expire-pending-reposts")
    async def expire_pending_reposts() -> None:
        """Drop reposts that waited too long for their subject (memory bound; counted)."""
        now = clock.now()
        if now is None:
            return
        expired = ledger.expire_pending(now, owns())
        # No await since the sweep: only its own writes are pending in the table view.
        await ledger_table.flush(
            lambda key: key_partition(key[len(PENDING_PREFIX) :], settings.topic_partitions)
        )
        metrics.add("ledger.expired_reposts", expired)

    @app.timer(interval=settings.dedupe_prune_seconds, name="forget-old-dedupe-entries")
    async def forget_old_dedupe_entries() -> None:
        """Forget posts stored longer ago than the dedupe retention (bounds the ledger).

        One synchronous sweep over the ledger (about a second per million entries here),
        so every write flushed below is a delete of this sweep.
        """
        now = clock.now()
        if now is None:
            return
        cutoff = now - timedelta(days=settings.dedupe_retention_days)
        dropped = ledger.forget_before(cutoff, owns())
        await ledger_table.flush(lambda key: key_partition(dropped[key], settings.topic_partitions))
        metrics.add("ledger.forgotten", len(dropped))

    @app.timer(interval=settings.counts_refresh_seconds, name="refresh-counts")
    async def refresh_counts() -> None:
        """Re-publish the counts of papers whose windows changed since their last update,
        so windows decay without new posts."""
        assignment = set(app.assignor.assigned_actives())
        if assignment != refreshed_for:
            refresh.reset()  # papers that came back may have changed elsewhere
            refreshed_for.clear()
            refreshed_for.update(assignment)
        if clock.stream_time is None:
            # Just restarted and nothing new yet: resume stream time from the tables.
            lasts = [s["last"] for s in papers.values() if s and s.get("last")]
            if lasts:
                clock.observe(datetime.fromtimestamp(max(lasts), clock.tz))
        as_of = clock.now()
        if as_of is None:
            log.debug("no stream time yet; nothing to refresh")
            return
        refreshed = 0
        for arxiv_id in refresh.due(papers, as_of, owns()):
            state = papers.get(arxiv_id)
            if not state:
                continue
            update = counting.count_update(arxiv_id, state, as_of, settings.trend_half_life_hours)
            refresh.schedule(arxiv_id, state, as_of)
            await send(topics.counts, arxiv_id.encode(), update.to_json_bytes())
            refreshed += 1
        metrics.add("count.refreshed", refreshed)
        log.info(
            "refreshed counts of %d papers as of %s; metrics %s",
            refreshed,
            as_of,
            metrics.snapshot(),
        )
