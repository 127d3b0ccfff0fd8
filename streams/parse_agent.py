"""Raw posts -> routed records: parsed, and applied to the ledger in place when the key's
partition is the raw record's own (else sent on to the routing topic).

A raw record is one post, or an envelope of many (`trending_arxiv.core.envelope`): a bad
post inside an envelope is dead-lettered alone and the rest of the envelope counts. The
records sent on to the routing topic travel in envelopes too (`MentionBatcher.route`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import faust
from faust.types import EventT

from streams.context import MentionBatcher, WorkerContext
from streams.ledger_agent import apply_to_ledger
from streams.partitioner import post_key_partition
from streams.progress import note_in_place_promises, note_parsed
from trending_arxiv.core.json_bytes import kept_json
from trending_arxiv.core.pipeline import parse_and_route
from trending_arxiv.core.posts import PostParseError


async def parse_post(
    worker: WorkerContext,
    line: bytes,
    event: EventT,
    batcher: MentionBatcher,
    line_number: int | None = None,
) -> None:
    """Parse one raw post of `event` (the record itself, or line `line_number` of it)."""
    settings, metrics = worker.settings, worker.metrics
    partition = event.message.partition
    try:
        parsed = parse_and_route(line)
    except PostParseError as error:
        await worker.dead_letter("parse", str(error), event, line, line_number)
        return
    if parsed.newest is not None:
        worker.watermark.observe_epoch(partition, parsed.newest)
    metrics.add("parse.posts", parsed.posts)
    metrics.add("parse.without_papers", parsed.without_papers)
    for key, record in parsed.routed:
        ledger_partition = post_key_partition(key, settings.topic_partitions)
        if settings.ledger_in_place and ledger_partition == partition:
            # Already on the partition the ledger keeps this key in (the producers key
            # raw posts by post id): skip the routing hop.
            metrics.add("parse.ledger_in_place")
            await apply_to_ledger(worker, record, event, batcher)
            continue
        # Buffered until its envelope is sent: kept_json, not orjson's pinning buffer.
        await batcher.route(ledger_partition, kept_json(record))


def register(worker: WorkerContext) -> None:
    from_raw = worker.mention_batcher()

    @worker.app.agent(worker.topics.raw_posts, name="parse-posts")
    async def parse_posts(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for events in worker.batches(stream, worker.settings.raw_batch_size):
            worker.sync_assignment()
            worker.parsing = True
            try:
                for event in events:
                    for line, number in worker.record_lines(event, "parse"):
                        await parse_post(worker, line, event, from_raw, number)
                await from_raw.flush()
                # Reported by `streams.progress`, after these sends.
                note_parsed(worker, events)
                note_in_place_promises(worker)
            finally:
                worker.parsing = False
            yield None
