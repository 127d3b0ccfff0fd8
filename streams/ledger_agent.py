"""Routed records -> the ledger (dedupe, repost joins, deletes) -> mentions; and the
raw-progress reports among them -> the repost-expiry clock (`streams.progress`).

Routed records come in envelopes (`MentionBatcher.route`: one per batch and partition);
a bad one is dead-lettered alone and the rest of its envelope counts. A record without
the envelope header is one routed record (a progress report, or what an older worker
wrote).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from faust.types import EventT

from streams.context import MentionBatcher, WorkerContext
from streams.partitioner import post_key_partition
from streams.progress import note_routed_promises
from trending_arxiv.core.json_bytes import kept_json
from trending_arxiv.core.models import parse_utc
from trending_arxiv.core.progress import PROGRESS_TYPE, read_progress_record


def ledger_time(worker: WorkerContext, record: dict[str, Any]) -> datetime:
    """Stream time for a ledger step: the watermark, else the record's own event time."""
    now = worker.watermark.current()
    if now is not None:
        return now
    entry_time = record["post"].get("t")
    return parse_utc(entry_time) if entry_time else datetime.now(UTC)


async def apply_to_ledger(
    worker: WorkerContext, record: dict[str, Any], event: EventT, batcher: MentionBatcher
) -> None:
    """Dedupe/join/delete one routed record; emit its mentions and re-routes.

    `event` must be on the partition of the record's key: the ledger's table writes go
    to that event's changelog partition.
    """
    metrics = worker.metrics
    result = worker.ledger.apply(record, ledger_time(worker, record))
    # Sent with the batch's outputs, after them (`MentionBatcher.flush`).
    batcher.note_ledger_changes(event.message.partition)
    metrics.add("ledger.duplicates", result.duplicates)
    metrics.add("ledger.pending_reposts", result.pending)
    metrics.add("ledger.expired_reposts", result.expired_reposts)
    metrics.add("ledger.deletes", result.deletes)
    metrics.add("ledger.mentions", len(result.mentions))
    for mention in result.mentions:
        await batcher.add(mention)  # for the counting agent and the sink, in envelopes
    for key, rerouted in result.reroutes:
        await batcher.route(post_key_partition(key, worker.partitions), kept_json(rerouted))


async def apply_routed(
    worker: WorkerContext,
    value: bytes,
    event: EventT,
    batcher: MentionBatcher,
    line_number: int | None = None,
) -> None:
    """One routed record of `event` (the record itself, or line `line_number` of it): a
    post for the ledger, or a progress report for the expiry clock."""
    try:
        record = orjson.loads(value)
        if record.get("type") == PROGRESS_TYPE:
            progress = read_progress_record(record)
            worker.expiry_clock.report(event.message.partition, progress)
            return
        if not isinstance(record.get("post"), dict):
            raise ValueError("no post object")
    except (ValueError, TypeError, AttributeError) as error:
        reason = f"unreadable routed record: {error}"
        await worker.dead_letter("ledger", reason, event, value, line_number)
        return
    await apply_to_ledger(worker, record, event, batcher)


def register(worker: WorkerContext) -> None:
    from_routed = worker.mention_batcher()

    @worker.app.agent(worker.topics.routed_posts, name="ledger")
    async def apply_ledger(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for events in worker.batches(stream):
            for event in events:
                for line, number in worker.record_lines(event, "ledger"):
                    await apply_routed(worker, line, event, from_routed, number)
            await from_routed.flush()
            note_routed_promises(worker)  # sent by `streams.progress`, after these sends
            yield None
