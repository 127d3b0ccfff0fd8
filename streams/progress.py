"""Raw-partition progress across workers, for repost expiry (`core.progress`).

The parse agent notes how far it has parsed each raw partition; a timer reports that,
when it changed, on every routed partition (after the routed records it vouches for:
one producer, in order); the ledger agent keeps what it reads; the expiry sweep takes
each owned routed partition's stream time from those reports and the raw topic's end
offsets, asked of the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import orjson
from aiokafka.errors import KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP, EventT

from streams.context import WorkerContext
from trending_arxiv.core.progress import RawProgress, progress_record

log = logging.getLogger(__name__)


def note_parsed(worker: WorkerContext, events: Iterable[EventT]) -> None:
    """A batch's raw records are parsed and their routed records sent."""
    parsed = worker.raw_parsed
    for event in events:
        message = event.message
        if message.offset >= parsed.get(message.partition, 0):
            parsed[message.partition] = message.offset + 1


def _committed(worker: WorkerContext, partition: int) -> int:
    """The raw partition's committed offset (0 if none): parsed in an earlier session.

    Faust keeps it in `Consumer._committed_offset` (set when it seeks after an
    assignment, and at each commit); there is no public accessor.
    """
    tp = TP(worker.topics.raw_posts.get_topic_name(), partition)
    committed = getattr(worker.app.consumer, "_committed_offset", {}).get(tp)
    return committed if isinstance(committed, int) else 0


def current_progress(worker: WorkerContext) -> dict[int, RawProgress]:
    """How far this worker has parsed each raw partition it owns."""
    owned = worker.sync_assignment()
    for gone in [p for p in worker.raw_parsed if p not in owned]:
        del worker.raw_parsed[gone]  # parsed again from the commit if it comes back
    return {
        partition: RawProgress(
            max(worker.raw_parsed.get(partition, 0), _committed(worker, partition)),
            worker.watermark.newest_of(partition),
        )
        for partition in sorted(owned)
    }


async def report_progress(worker: WorkerContext) -> bool:
    """Send this worker's raw progress to every routed partition, if it changed."""
    progress = current_progress(worker)
    if not progress or progress == worker.reported_progress:
        return False
    value = orjson.dumps(progress_record(progress))
    topic = worker.topics.routed_posts.get_topic_name()
    try:
        for routed in range(worker.partitions):
            await worker.app.producer.send(topic, None, value, routed, None, None)
    except KafkaError as error:
        # Sent again at the next tick: a partly sent report is harmless, the next one
        # carries the same progress or newer.
        log.info("progress report not sent (%s); retrying at the next tick", error)
        return False
    worker.reported_progress = progress
    worker.metrics.add("progress.reports")
    return True


async def raw_end_offsets(worker: WorkerContext) -> Mapping[int, int]:
    """Each raw partition's end offset now, from the broker ({} if unknown yet)."""
    topic = worker.topics.raw_posts.get_topic_name()
    try:
        count = worker.app.consumer.topic_partitions(topic)
        if not count:
            return {}
        ends = await worker.app.consumer.highwaters(*(TP(topic, p) for p in range(count)))
    except (ConsumerNotStarted, KafkaError) as error:
        # Starting, rebalancing or a broker away: skip this sweep, never crash the timer.
        log.info("raw end offsets unknown (%s): repost expiry waits", error)
        return {}
    return {tp.partition: offset for tp, offset in ends.items()}


async def expiry_stream_times(worker: WorkerContext) -> dict[int, float | None]:
    """Stream time (epoch s) for repost expiry of each routed partition this worker owns."""
    owned = worker.routed_partitions()
    clock = worker.expiry_clock
    clock.keep_only(owned)
    ends = await raw_end_offsets(worker)
    return {routed: clock.stream_time(routed, ends) for routed in owned}
