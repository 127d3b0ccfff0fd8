"""Raw-partition progress across workers, for repost expiry (`core.progress`), and the
promises that carry stream time to the counting agent's alerts (`core.alert_clock`).

The parse agent notes how far it has parsed each raw partition; a timer reports that,
when it changed, on every routed partition (after the routed records it vouches for:
one producer, in order); the ledger agent keeps what it reads; the expiry sweep takes
each owned routed partition's stream time from those reports and the raw topic's end
offsets, asked of the broker.

The parse and ledger agents note, after each batch's sends, what they promise of the
mentions still to come; the same timer sends those promises, when they changed, on
every mentions partition (after the mentions they vouch for).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiokafka.errors import KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP, EventT

from streams.context import WorkerContext
from trending_arxiv.core.alert_clock import WATERMARK_HEADERS, watermark_record
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


def _parsed_through(worker: WorkerContext, partition: int) -> int:
    """The next raw offset of `partition` to parse."""
    return max(worker.raw_parsed.get(partition, 0), _committed(worker, partition))


def lagging_raw(worker: WorkerContext, owned: set[int]) -> set[int]:
    """The owned raw partitions with records still unread (or not known to have none),
    by the end offsets the consumer last fetched."""
    topic = worker.topics.raw_posts.get_topic_name()
    lagging = set()
    for partition in owned:
        try:
            end = worker.app.consumer.highwater(TP(topic, partition))
        except (AssertionError, ConsumerNotStarted, KafkaError):
            end = None  # not assigned to the consumer yet
        if end is None or _parsed_through(worker, partition) < end:
            lagging.add(partition)
    return lagging


def note_in_place_promises(worker: WorkerContext) -> None:
    """What the parse agent promises of the mentions it has still to send, by raw
    partition: called between batches, with everything parsed sent."""
    owned = worker.sync_assignment()
    lagging = lagging_raw(worker, owned)
    lateness = worker.settings.alert_lateness_seconds
    promised = worker.promised_in_place
    for partition in [p for p in promised if p not in owned]:
        del promised[partition]
    for partition in owned:
        promise = worker.watermark.vouched(partition, lateness, lagging)
        if promise is not None:
            promised[partition] = promise


def note_routed_promises(worker: WorkerContext) -> None:
    """What the ledger agent promises of the mentions it has still to send, by routed
    partition: called after a batch's sends."""
    owned = worker.routed_partitions()
    promised = worker.promised_routed
    for partition in [p for p in promised if p not in owned]:
        del promised[partition]
    for partition in owned:
        promise = worker.expiry_clock.vouched(partition, worker.partitions)
        if promise is not None:
            promised[partition] = promise


async def _send_to_every_partition(
    worker: WorkerContext, topic: str, value: bytes, headers: Any, what: str
) -> bool:
    """Send `value` to each partition of `topic`, after what this producer sent before.

    False if Kafka refused: sent again at the next tick. A partly sent report is
    harmless, the next one carries the same or newer."""
    try:
        for partition in range(worker.partitions):
            await worker.app.producer.send(topic, None, value, partition, None, headers)
    except KafkaError as error:
        log.info("%s not sent (%s); retrying at the next tick", what, error)
        return False
    return True


async def report_promises(worker: WorkerContext) -> bool:
    """Send this worker's promises to every mentions partition, if they changed (after
    `report_progress`, which notes the idle partitions' promises)."""
    promises = (dict(worker.promised_in_place), dict(worker.promised_routed))
    if not any(promises) or promises == worker.sent_promises:
        return False
    topic = worker.topics.mentions.get_topic_name()
    value = watermark_record(*promises)
    if not await _send_to_every_partition(
        worker, topic, value, WATERMARK_HEADERS, "alert watermark"
    ):
        return False
    worker.sent_promises = promises
    worker.metrics.add("alerts.watermarks_sent")
    return True


def current_progress(worker: WorkerContext) -> dict[int, RawProgress]:
    """How far this worker has parsed each raw partition it owns."""
    owned = worker.sync_assignment()
    for gone in [p for p in worker.raw_parsed if p not in owned]:
        del worker.raw_parsed[gone]  # parsed again from the commit if it comes back
    # The promise noted after the parse agent's last sends, not one taken mid-batch.
    return {
        partition: RawProgress(
            _parsed_through(worker, partition),
            worker.watermark.newest_of(partition),
            worker.promised_in_place.get(partition),
        )
        for partition in sorted(owned)
    }


async def report_progress(worker: WorkerContext) -> bool:
    """Send this worker's raw progress to every routed partition, if it changed."""
    if not worker.parsing:
        note_in_place_promises(worker)  # idle partitions' promises move with time
    progress = current_progress(worker)
    if not progress or progress == worker.reported_progress:
        return False
    topic = worker.topics.routed_posts.get_topic_name()
    value = orjson.dumps(progress_record(progress))
    if not await _send_to_every_partition(worker, topic, value, None, "progress report"):
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
