"""Offset commits that never pass a record the agents did not process.

Faust commits, per partition, the end of the first run of consecutive acknowledged
offsets. Its check for records missing before that run is off by one (faust-streaming
0.15.3, `Consumer._new_offset`): it compares the first acknowledged offset with the
committed one as if that were the last record read, when Kafka's committed offset is the
next record to read, and it skips the check at offset 0 and before a first commit. One
missing record is committed over and never read again; two or more stop the partition's
commits for good.

Records do go missing: a worker that starts with records waiting can read some before its
recovery clears the stream queues (faust-streaming/faust#596, open). Seen here: a worker
that `up` restarted after a SIGKILL lost the one new record of a raw partition, and its
ten posts were never counted (about one run in ten of `test_up`).

`GapSafeConsumer` commits nothing past a missing record, and counts a partition that was
never committed from its log start (where `consumer_auto_offset_reset="earliest"` reads
from). `InOrder` holds back the records after a missing one and sends the consumer back
to it; a timer sends it back for a lost record with none after it. The agents' topics
are neither compacted nor written in transactions, so their offsets are contiguous.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

import faust
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, EventT

log = logging.getLogger(__name__)

#: How long the log-start look-up after an assignment may take before it is skipped.
LOG_START_TIMEOUT_SECONDS = 10.0
#: A partition sent back to a missing record is sent back again if it is still missing
#: after this long (the records read again were lost too).
SEND_BACK_AGAIN_SECONDS = 5.0


def missing_head(acked: Sequence[int], known_gaps: Any, committed: int | None) -> bool:
    """Whether records from `committed` (the next offset to read) on were never acknowledged
    while later ones were. `known_gaps`: Faust's intervals of offsets known not to exist."""
    if not acked or committed is None:
        return False
    first = min(acked)
    if known_gaps:
        first = min(first, known_gaps.begin())
    return bool(first > committed)


class RewindableOffsets(defaultdict[TP, int | None]):
    """Faust's read offsets: per partition, the next offset its drain loop hands on (it
    drops lower ones as already read, and takes a jump past it for a known gap, as in a
    compacted topic). While a rewind waits for the record rewound to, the offset reads as
    unknown and is not raised: the records fetched before the seek, still being handed
    on, would otherwise raise it again, be taken for a gap, and make the records read
    again be dropped as already read."""

    def __init__(self) -> None:
        super().__init__(lambda: None)
        self._rewinding: dict[TP, int] = {}

    def __getitem__(self, tp: TP) -> int | None:
        if tp in self._rewinding:
            return None
        return super().__getitem__(tp)

    def rewind(self, tp: TP, offset: int) -> None:
        self._rewinding[tp] = offset
        super().__setitem__(tp, offset)

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        target = self._rewinding.get(tp)
        if target is not None:
            if offset is not None and offset > target:
                return  # a record fetched before the rewind
            del self._rewinding[tp]
        super().__setitem__(tp, offset)

    def __delitem__(self, tp: TP) -> None:
        self._rewinding.pop(tp, None)
        super().__delitem__(tp)

    def pop(self, tp: TP, *default: Any) -> Any:  # a revoked partition
        self._rewinding.pop(tp, None)
        return super().pop(tp, *default)

    def update(self, *args: Any, **kwargs: Any) -> None:  # the seek after an assignment
        values = dict(*args, **kwargs)
        for tp in values:
            self._rewinding.pop(tp, None)
        super().update(values)


class GapSafeConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer that never commits past a record it did not process,
    and can be sent back to a record while it runs (`rewind`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = RewindableOffsets()

    async def rewind(self, tp: TP, offset: int) -> None:
        """Read `tp` again from `offset` on."""
        read_offsets = self._read_offset
        assert isinstance(read_offsets, RewindableOffsets)
        # First: from now on the drain loop hands on every record of `tp` and raises its
        # read offset for none until `offset` comes, whether fetched before or after.
        read_offsets.rewind(tp, offset)
        # In the consumer's own thread: aiokafka's `seek` from this one can leave its
        # fetcher waiting on a future it is never woken from.
        thread = self._thread
        await thread.call_thread(_seek_in_thread, thread._ensure_consumer(), tp, offset)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Take no jump in the read offsets for a gap: the agents' topics have none (a
        jump comes from a seek, and its offsets were not processed). Faust counts a gap's
        offsets as acknowledged, so a false one is committed over."""

    def _new_offset(self, tp: TP) -> int | None:
        if missing_head(self._acked[tp], self._gap[tp], self._committed_offset[tp]):
            return None
        return super()._new_offset(tp)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        # A partition without a committed offset is read from its log start: without
        # that as its committed offset, records missing at the head would go unseen.
        topics = self.app.topics
        unknown = [
            tp
            for tp in self.assignment()
            if self._committed_offset[tp] is None and topics.acks_enabled_for(tp.topic)
        ]
        if not unknown:
            return
        try:
            starts = await asyncio.wait_for(
                self.earliest_offsets(*unknown), LOG_START_TIMEOUT_SECONDS
            )
        except Exception as error:  # Faust's own behaviour is the fallback, not a crash
            log.warning("could not read the log start of %d partitions (%r)", len(unknown), error)
            return
        for tp, start in starts.items():
            if self._committed_offset[tp] is None and start is not None and start >= 0:
                self._committed_offset[tp] = start


async def _seek_in_thread(consumer: Any, tp: TP, offset: int) -> None:
    """Seek aiokafka's `consumer` (in its own thread) and wait until it is there."""
    consumer.seek(tp, offset)
    await consumer.position(tp)


def use_gap_safe_consumer(app: faust.App) -> None:
    """Make `app` create a `GapSafeConsumer` (before its consumer exists)."""
    app.transport.Consumer = GapSafeConsumer  # type: ignore[misc]


class InOrder:
    """Hands the agents each partition's records in offset order, none missing.

    A record after one that never came (`missing_head`'s records, seen from the agent's
    side) is not processed: the consumer is sent back to the missing one, and the
    records from there come again, in order. Processing a record twice changes nothing,
    but the counting tables skip what is older than what they applied, so a record
    read again after later ones would be lost to them: order matters, not only presence.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._next: dict[TP, int] = {}  # the next offset each partition must hand on
        self._generation: int | None = None  # the assignment `_next` belongs to
        self._sent_back: dict[TP, tuple[int, float]] = {}  # offset and when, per partition
        self._seen: dict[TP, float] = {}  # when each partition's last record came
        self._since = time.monotonic()  # when the assignment began (as far as seen here)

    async def admit(self, events: Sequence[EventT]) -> list[EventT]:
        """`events` but those after a missing record (for which the consumer is sent back)."""
        generation = self.app.consumer_generation_id
        if generation != self._generation:  # a rebalance: start again from the commits
            self._generation = generation
            self._next.clear()
            self._sent_back.clear()
            self._seen.clear()
            self._since = time.monotonic()
        committed = self.app.consumer._committed_offset  # type: ignore[attr-defined]
        kept: list[EventT] = []
        missing: dict[TP, int] = {}  # the record each partition still waits for
        now = time.monotonic()
        for event in events:
            message = event.message
            tp, offset = message.tp, message.offset
            self._seen[tp] = now
            expected = self._next.get(tp)
            if expected is None:
                expected = committed.get(tp)
            if expected is None or offset <= expected:
                kept.append(event)
                self._next[tp] = offset + 1
                missing.pop(tp, None)
            else:  # held: read again after the missing record
                missing[tp] = expected
        for tp, expected in missing.items():
            await self._send_back(tp, expected)
        return kept

    async def send_back_stalled(self, quiet_seconds: float) -> None:
        """Send back the partitions whose next record has not come for `quiet_seconds`
        while Kafka has it: a lost record with none after it shows no gap."""
        app = self.app
        if app.rebalancing or app.in_recovery or app.consumer_generation_id != self._generation:
            return
        now = time.monotonic()
        consumer = app.consumer
        committed = consumer._committed_offset  # type: ignore[attr-defined]
        for tp in consumer.assignment():
            expected = self._next.get(tp, committed.get(tp))
            if expected is None or not app.topics.acks_enabled_for(tp.topic):
                continue  # a table's changelog, or nothing to compare with
            end = consumer.highwater(tp)
            quiet = now - self._seen.get(tp, self._since)
            if end is not None and end > expected and quiet >= quiet_seconds:
                await self._send_back(tp, expected)
                self._seen[tp] = now

    async def _send_back(self, tp: TP, offset: int) -> None:
        """Seek `tp` back to `offset`, unless that was asked for a moment ago (the records
        held now may be ones read before it)."""
        now = time.monotonic()
        last = self._sent_back.get(tp)
        if last is not None and last[0] == offset and now - last[1] < SEND_BACK_AGAIN_SECONDS:
            return
        self._sent_back[tp] = (offset, now)
        consumer = cast(GapSafeConsumer, self.app.consumer)
        start = (await consumer.earliest_offsets(tp)).get(tp)
        if start is not None and start > offset:
            # Deleted by retention before this worker read them: commits may pass them.
            log.error(
                "records %d to %d of %s[%d] were deleted before they were read",
                offset, start - 1, tp.topic, tp.partition,
            )  # fmt: skip
            consumer._gap[tp].addi(offset, start)
            self._next[tp] = offset = start
        else:
            log.warning(
                "record %d of %s[%d] never came (faust-streaming/faust#596); reading from it "
                "again",
                offset, tp.topic, tp.partition,
            )  # fmt: skip
        await consumer.rewind(tp, offset)
