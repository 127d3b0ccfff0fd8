"""Raw posts -> routed records: parsed, and applied to the ledger in place when the key's
partition is the raw record's own (else sent on to the routing topic)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import faust
import orjson

from streams.context import WorkerContext
from streams.direct_table import key_partition
from streams.ledger_agent import apply_to_ledger
from trending_arxiv.core.pipeline import parse_and_route
from trending_arxiv.core.posts import PostParseError


def register(worker: WorkerContext) -> None:
    settings, metrics, watermark = worker.settings, worker.metrics, worker.watermark
    from_raw = worker.mention_batcher()

    @worker.app.agent(worker.topics.raw_posts, name="parse-posts")
    async def parse_posts(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for events in worker.batches(stream):
            worker.sync_assignment()
            for event in events:
                partition = event.message.partition
                try:
                    parsed = parse_and_route(event.value)
                except PostParseError as error:
                    await worker.dead_letter("parse", str(error), event)
                    continue
                if parsed.newest is not None:
                    watermark.observe_epoch(partition, parsed.newest)
                metrics.add("parse.posts", parsed.posts)
                metrics.add("parse.without_papers", parsed.without_papers)
                for key, record in parsed.routed:
                    if (
                        settings.ledger_in_place
                        and key_partition(key, settings.topic_partitions) == partition
                    ):
                        # Already on the partition the ledger keeps this key in (the
                        # producers key raw posts by post id): skip the routing hop.
                        metrics.add("parse.ledger_in_place")
                        await apply_to_ledger(worker, record, event, from_raw)
                        continue
                    await worker.send(
                        worker.topics.routed_posts, key.encode(), orjson.dumps(record)
                    )
            await from_raw.flush()
            yield None
