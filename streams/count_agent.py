"""Mention batches -> per-paper counts (changelog-backed), count updates and alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from streams.context import WorkerContext
from trending_arxiv.core.models import Mention
from trending_arxiv.core.pipeline import count_paper_with_history, group_by_paper, new_alerts


async def publish_counts(
    worker: WorkerContext, arxiv_id: str, state: dict[str, Any], update: Any
) -> None:
    """Send a paper's count update and the alerts it fires for the first time."""
    topics, metrics = worker.topics, worker.metrics
    # Noted before the await: whichever update is sent last is also noted last.
    worker.refresh.note_sent(arxiv_id, update.as_of)
    await worker.send(topics.counts, arxiv_id.encode(), update.to_json_bytes())
    metrics.add("count.updates")
    for alert in new_alerts(state, update, worker.rules):
        metrics.add("alerts.published")
        await worker.send(topics.alerts, arxiv_id.encode(), alert.to_json_bytes())


def register(worker: WorkerContext) -> None:
    settings = worker.settings
    newest_mention: list[float] = []  # stream time's fallback before any raw post is read

    @worker.app.agent(worker.topics.mention_batches, name="count-mentions")
    async def count_mentions(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for events in worker.batches(stream):
            mentions: list[Mention] = []
            partition_of: dict[str, int] = {}
            for event in events:
                try:
                    batch = [Mention.from_json(m) for m in orjson.loads(event.value)["mentions"]]
                except (ValueError, KeyError, TypeError) as error:
                    await worker.dead_letter("count", f"unreadable mention batch: {error}", event)
                    continue
                for mention in batch:
                    # Every mention of a paper comes on the paper's partition (MentionBatcher).
                    partition_of[mention.arxiv_id] = event.message.partition
                mentions.extend(batch)
            if not mentions:
                yield None
                continue
            newest = max(m.created_at.timestamp() for m in mentions)
            if not newest_mention or newest > newest_mention[0]:
                newest_mention[:] = [newest]
            as_of = worker.watermark.current() or datetime.fromtimestamp(newest_mention[0], UTC)
            for arxiv_id, paper_mentions in group_by_paper(mentions).items():
                # The rules see the batch's history step by step in event time (a
                # replayed file can land in one batch), then the counts as of now.
                state, update, history = count_paper_with_history(
                    arxiv_id,
                    worker.papers.get(arxiv_id),
                    paper_mentions,
                    worker.paper_accounts,
                    as_of,
                    worker.rules,
                    settings.trend_half_life_hours,
                )
                for alert in history:
                    worker.metrics.add("alerts.published")
                    await worker.send(
                        worker.topics.alerts, arxiv_id.encode(), alert.to_json_bytes()
                    )
                await publish_counts(worker, arxiv_id, state, update)
                worker.papers[arxiv_id] = state
                partition = partition_of[arxiv_id]
                await worker.paper_accounts.flush(partition)
                await worker.papers.flush(partition)
            yield None
