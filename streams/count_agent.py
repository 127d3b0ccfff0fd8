"""Mentions -> per-paper counts (changelog-backed), count updates and alerts.

The counting agent reads the mentions topic the sink reads (the ledger's mentions, in
envelopes on each paper's partition): no second copy of each mention is written for it.
The watermark records among them (`core.alert_clock`) say up to when each partition's
alerts can be decided: each paper's recent mentions wait in its alert log
(`core.alert_log`, the `alert_logs` table) until then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import faust
from faust.types import EventT

from streams.context import WorkerContext
from streams.direct_table import key_partition
from streams.record_batches import RecordBatches
from trending_arxiv.core.alert_clock import is_watermark, read_watermark_record
from trending_arxiv.core.models import CountUpdate, Mention, mention_for_counting
from trending_arxiv.core.pipeline import StagedAccounts, count_paper_at
from trending_arxiv.core.stored import pack_account_entry, pack_summary


async def publish_counts(
    worker: WorkerContext, arxiv_id: str, update: CountUpdate, batches: RecordBatches
) -> None:
    """Append a paper's count update to `batches` (sent with them)."""
    topics, metrics = worker.topics, worker.metrics
    # Noted before the await: whichever update is sent last is also noted last.
    worker.refresh.note_sent(arxiv_id, update.as_of)
    counts_topic = topics.counts.get_topic_name()
    await batches.add_keyed(counts_topic, arxiv_id.encode(), update.to_json_bytes())
    metrics.add("count.updates")


def read_mention(value: bytes, partition: int, partitions: int) -> Mention:
    """A mention from its JSON, which must be on its paper's partition (the counting
    tables' changelog partitions are the paper's); else a ValueError."""
    mention = mention_for_counting(value)  # without its text: a batch holds thousands
    expected = key_partition(mention.arxiv_id, partitions)
    if expected != partition:
        raise ValueError(
            f"a mention of {mention.arxiv_id} on partition {partition}, not {expected}"
        )
    return mention


async def read_mentions(worker: WorkerContext, event: EventT) -> list[Mention]:
    """The mentions of a mentions-topic record: an envelope of them (the worker's), each
    bad line dead-lettered alone, or one mention (a bad one dead-lettered whole)."""
    partition, partitions = event.message.partition, worker.partitions
    mentions: list[Mention] = []
    for line, number in worker.record_lines(event, "count"):
        try:
            mentions.append(read_mention(line, partition, partitions))
        except (ValueError, KeyError, TypeError) as error:
            reason = f"unreadable mention: {error}"
            await worker.dead_letter("count", reason, event, line, number)
    return mentions


async def read_promises(worker: WorkerContext, event: EventT) -> None:
    """Note a watermark record's promises (a bad one is dead-lettered)."""
    try:
        promises = read_watermark_record(event.value)
    except ValueError as error:
        await worker.dead_letter("count", f"unreadable watermark record: {error}", event)
        return
    worker.alert_clock.note(event.message.partition, promises)


def register(worker: WorkerContext) -> None:
    newest_mention: list[float] = []  # stream time's fallback before any raw post is read
    swept = [time.monotonic()]  # when stale alert logs were last forgotten

    # The mentions topic the sink reads: envelopes on each paper's partition.
    @worker.app.agent(worker.topics.mentions, name="count-mentions")
    async def count_mentions(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for events in worker.batches(stream):
            # Each paper's mentions with the offset of the record they came in.
            by_paper: dict[str, list[tuple[int, Mention]]] = {}
            partition_of: dict[str, int] = {}
            promised: set[int] = set()  # partitions whose watermark may have moved
            newest: float | None = None
            for event in events:
                if is_watermark(event.message.headers):
                    await read_promises(worker, event)
                    promised.add(event.message.partition)
                    continue
                offset = event.message.offset
                for mention in await read_mentions(worker, event):
                    # Every mention of a paper comes on the paper's partition (MentionBatcher).
                    partition_of[mention.arxiv_id] = event.message.partition
                    by_paper.setdefault(mention.arxiv_id, []).append((offset, mention))
                    moment = mention.created_at.timestamp()
                    newest = moment if newest is None or moment > newest else newest
            if newest is not None:
                if not newest_mention or newest > newest_mention[0]:
                    newest_mention[:] = [newest]
                as_of = worker.watermark.current() or datetime.fromtimestamp(newest_mention[0], UTC)
                await count_batch(worker, by_paper, partition_of, as_of)
            sweep = time.monotonic() - swept[0] >= worker.settings.alert_log_sweep_seconds
            if sweep:
                swept[0] = time.monotonic()
            await decide_alerts(worker, by_paper, partition_of, promised, sweep)
            yield None


async def decide_alerts(
    worker: WorkerContext,
    by_paper: dict[str, list[tuple[int, Mention]]],
    partition_of: dict[str, int],
    promised: set[int],
    sweep: bool = False,
) -> None:
    """Note a batch's mentions in their papers' alert logs and decide what each
    partition's watermark allows; send the alerts, then save the logs (an alert sent
    twice after a crash keeps its id; one never sent would be lost).

    `sweep`: also forget the logs no moment still to come can see."""
    owned = worker.mentions_partitions()
    for gone in [p for p in worker.alert_books if p not in owned]:
        del worker.alert_books[gone]  # indexed again from the table if it comes back
        worker.alert_clock.forget(gone)
    grouped: dict[int, dict[str, list[Mention]]] = {}
    for arxiv_id, positioned in by_paper.items():
        mentions = [mention for _, mention in positioned]
        grouped.setdefault(partition_of[arxiv_id], {})[arxiv_id] = mentions
    alerts = []
    for partition in sorted(set(grouped) | promised):
        book = worker.alert_book(partition)
        watermark = worker.alert_clock.watermark(partition)
        late = book.late
        alerts += book.add(grouped.get(partition, {}), watermark, worker.rules)
        worker.metrics.add("alerts.late_mentions", book.late - late)
    if sweep:
        forget_stale_logs(worker, owned)
    for alert in alerts:
        worker.metrics.add("alerts.published")
        await worker.send(worker.topics.alerts, alert.arxiv_id.encode(), alert.to_json_bytes())
    if alerts:
        await worker.app.producer.flush()
    await worker.alert_logs.flush(lambda key: key_partition(key, worker.partitions))


async def count_batch(
    worker: WorkerContext,
    by_paper: dict[str, list[tuple[int, Mention]]],
    partition_of: dict[str, int],
    as_of: datetime,
) -> None:
    """Count a batch's mentions; save the paper summaries, and once they are durable, the
    account entries (the order `count_paper_at` relies on to replay a batch exactly)."""
    settings, partitions = worker.settings, worker.partitions
    accounts = StagedAccounts(worker.paper_accounts)
    published: list[tuple[str, CountUpdate]] = []
    for arxiv_id, positioned in by_paper.items():
        state, update = count_paper_at(
            arxiv_id,
            worker.summaries.get(arxiv_id),
            positioned,
            partition_of[arxiv_id],
            accounts,
            as_of,
            settings.trend_half_life_hours,
        )
        published.append((arxiv_id, update))
        worker.papers[arxiv_id] = pack_summary(state)

    def paper_partition(arxiv_id: str) -> int:
        found = partition_of.get(arxiv_id)
        return key_partition(arxiv_id, partitions) if found is None else found

    # No await since the writes above: this flush takes all of them.
    summaries_saved = await worker.papers.flush(paper_partition)
    # A count update a touched paper (~0.4 a post): in record batches, as the changelogs.
    counts = RecordBatches(worker.app.producer)
    for arxiv_id, update in published:
        await publish_counts(worker, arxiv_id, update, counts)
    await counts.send()
    await asyncio.gather(*summaries_saved)
    for key, entry in accounts.changes.items():
        if entry is None:
            del worker.paper_accounts[key]
        else:
            worker.paper_accounts[key] = pack_account_entry(entry)
    await worker.paper_accounts.flush(lambda key: paper_partition(key.split(" ", 1)[0]))


def forget_stale_logs(worker: WorkerContext, owned: set[int]) -> None:
    """Forget the alert logs of the owned partitions that no moment still to come can
    see (`AlertBook.forget_stale`; their changelog deletes go with the next flush)."""
    by_partition: dict[int, list[str]] = {}
    for key in worker.alert_logs:
        by_partition.setdefault(key_partition(key, worker.partitions), []).append(key)
    for partition, papers in by_partition.items():
        watermark = worker.alert_clock.watermark(partition)
        if partition in owned and watermark is not None:
            dropped = worker.alert_book(partition).forget_stale(papers, watermark)
            worker.metrics.add("alerts.logs_forgotten", dropped)
