"""Offsets the worker commits (`streams.offsets`): never past a record it did not process.

Faust 0.15.3 commits over one missing record (faust-streaming/faust#596 makes records go
missing); `GapSafeConsumer` does not, and `InOrder` has the records read again, in order.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

import faust
import pytest
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP

from streams.offsets import (
    GapSafeConsumer,
    InOrder,
    RewindableOffsets,
    missing_head,
    use_gap_safe_consumer,
)

RAW, ROUTED, MENTIONS = TP("raw", 0), TP("routed", 2), TP("mentions", 1)


class Intervals(list):
    """Enough of intervaltree's IntervalTree for Faust's known gaps: begin() and addi()."""

    def begin(self) -> int:
        return min(start for start, _ in self)

    def addi(self, start: int, end: int) -> None:
        self.append((start, end))


def internals(
    acked: dict[TP, list[int]], committed: dict[TP, int | None], gaps: dict[TP, Intervals]
) -> SimpleNamespace:
    return SimpleNamespace(
        _acked=defaultdict(list, acked),
        _committed_offset=defaultdict(lambda: None, committed),
        _gap=defaultdict(Intervals, gaps),
    )


def test_any_record_missing_after_the_committed_offset_is_a_missing_head() -> None:
    # The committed offset is the next record to read: 9 missing is a gap, even alone.
    assert missing_head([10, 11], None, 9)
    assert missing_head([47, 46, 48], Intervals(), 43)
    # At offset 0 too (Faust's own check skips a committed offset of 0).
    assert missing_head([1, 2], None, 0)


def test_contiguous_offsets_a_known_gap_or_no_committed_offset_is_no_missing_head() -> None:
    assert not missing_head([9, 10], None, 9)
    assert not missing_head([20, 21], Intervals([(9, 20)]), 9)
    assert not missing_head([20, 21], None, None)
    assert not missing_head([], None, 9)


@pytest.fixture
def consumers() -> tuple[FaustConsumer, FaustConsumer]:
    """Faust's own consumer and ours, built (never started) by real apps."""
    stock = faust.App("offsets-stock", broker="kafka://127.0.0.1:1").consumer
    app = faust.App("offsets-safe", broker="kafka://127.0.0.1:1")
    use_gap_safe_consumer(app)
    return stock, app.consumer


def test_faust_commits_over_one_missing_record_and_the_gap_safe_consumer_does_not(
    consumers: tuple[FaustConsumer, FaustConsumer],
) -> None:
    stock, safe = consumers
    assert isinstance(safe, GapSafeConsumer) and not isinstance(stock, GapSafeConsumer)
    for consumer in (stock, safe):
        consumer._committed_offset[RAW] = 2  # records 0 and 1 done; 2 never processed
        consumer._acked[RAW] = [3, 4]
    assert stock._new_offset(RAW) == 5  # record 2 is skipped for good
    assert safe._new_offset(RAW) is None
    # No jump of the read offset is taken for a gap: the topics have none.
    asyncio.run(safe._add_gap(ROUTED, 3, 9))
    assert not safe._gap[ROUTED]
    # Once record 2 is read again, everything commits.
    safe._acked[RAW] = [2, 3, 4]
    assert safe._new_offset(RAW) == 5
    # Contiguous records commit as in Faust, a known gap included.
    safe._committed_offset[ROUTED] = 10
    safe._acked[ROUTED] = [10, 11, 13]
    assert safe._new_offset(ROUTED) == 12
    safe._gap[MENTIONS].addi(4, 7)
    safe._committed_offset[MENTIONS] = 4
    safe._acked[MENTIONS] = [7, 8]
    assert safe._new_offset(MENTIONS) == 9


class App:
    """The surface `InOrder` uses: the generation, the committed offsets and seeks."""

    def __init__(self, committed: dict[TP, int], log_starts: dict[TP, int] | None = None) -> None:
        self.consumer_generation_id = 1
        self.log_starts = log_starts or {}
        self.consumer = SimpleNamespace(
            _committed_offset=committed,
            _gap=defaultdict(Intervals),
            rewind=self._rewind,
            earliest_offsets=self._earliest_offsets,
        )
        self.seeks: list[tuple[TP, int]] = []

    async def _earliest_offsets(self, *partitions: TP) -> dict[TP, int]:
        return {tp: self.log_starts.get(tp, 0) for tp in partitions}

    async def _rewind(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


def events(*where: tuple[TP, int]) -> list[SimpleNamespace]:
    return [SimpleNamespace(message=SimpleNamespace(tp=tp, offset=o)) for tp, o in where]


def offsets(admitted: list) -> list[tuple[TP, int]]:
    return [(e.message.tp, e.message.offset) for e in admitted]


def test_a_rewind_holds_the_read_offset_until_the_record_rewound_to_comes() -> None:
    read = RewindableOffsets()
    read[RAW] = 40
    read.rewind(RAW, 2)
    read[RAW] = 41  # fetched before the seek, handed on after it
    assert read[RAW] is None  # so nothing is dropped as read, or taken for a gap
    assert read.get(RAW) == 2
    read[RAW] = 2  # the first record read again
    read[RAW] = 3
    assert read[RAW] == 3
    read.rewind(ROUTED, 5)
    read.update({ROUTED: 9})  # a new assignment's seek ends the rewind
    read[ROUTED] = 10
    assert read[ROUTED] == 10
    read.rewind(MENTIONS, 5)
    read.pop(MENTIONS)  # revoked
    read[MENTIONS] = 8
    assert read[MENTIONS] == 8 and read[TP("other", 0)] is None


def test_records_after_a_missing_one_wait_until_it_is_read_again_in_order() -> None:
    app = App({RAW: 2, ROUTED: 0})
    in_order = InOrder(app)  # type: ignore[arg-type]
    admit = lambda *where: offsets(asyncio.run(in_order.admit(events(*where))))  # noqa: E731
    # Record 2 of RAW never came: 3 and 4 wait, and the consumer goes back to 2, once.
    assert admit((RAW, 3), (ROUTED, 0), (RAW, 4), (ROUTED, 1)) == [(ROUTED, 0), (ROUTED, 1)]
    assert app.seeks == [(RAW, 2)]
    assert admit((RAW, 5), (ROUTED, 2)) == [(ROUTED, 2)]  # read before the seek
    assert app.seeks == [(RAW, 2)]
    # The last records read before the seek, then the records read again, in one batch.
    assert admit((RAW, 6), (RAW, 2), (RAW, 3), (RAW, 4)) == [(RAW, 2), (RAW, 3), (RAW, 4)]
    assert admit((RAW, 5), (RAW, 6)) == [(RAW, 5), (RAW, 6)]
    # Records read again from an earlier offset go through, in order.
    assert admit((ROUTED, 1), (ROUTED, 2), (ROUTED, 3)) == [(ROUTED, 1), (ROUTED, 2), (ROUTED, 3)]
    assert app.seeks == [(RAW, 2)]


def test_a_partition_still_missing_a_record_is_sent_back_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = App({RAW: 2})
    in_order = InOrder(app)  # type: ignore[arg-type]
    monkeypatch.setattr("streams.offsets.SEND_BACK_AGAIN_SECONDS", 0.0)
    for _ in range(2):
        assert asyncio.run(in_order.admit(events((RAW, 3)))) == []
    assert app.seeks == [(RAW, 2), (RAW, 2)]


def test_records_deleted_before_they_were_read_are_passed_over_as_a_known_gap() -> None:
    app = App({RAW: 2}, log_starts={RAW: 7})
    in_order = InOrder(app)  # type: ignore[arg-type]
    assert asyncio.run(in_order.admit(events((RAW, 8)))) == []
    assert app.seeks == [(RAW, 7)] and app.consumer._gap[RAW] == [(2, 7)]
    assert offsets(asyncio.run(in_order.admit(events((RAW, 7), (RAW, 8))))) == [(RAW, 7), (RAW, 8)]


def test_a_rebalance_starts_again_from_the_committed_offsets() -> None:
    app = App({RAW: 2})
    in_order = InOrder(app)  # type: ignore[arg-type]
    assert offsets(asyncio.run(in_order.admit(events((RAW, 2), (RAW, 3))))) == [(RAW, 2), (RAW, 3)]
    # Another worker had the partition meanwhile and committed up to 9.
    app.consumer_generation_id = 2
    app.consumer._committed_offset[RAW] = 9
    assert offsets(asyncio.run(in_order.admit(events((RAW, 9))))) == [(RAW, 9)]
    assert app.seeks == []


def test_without_a_committed_offset_records_go_through_as_they_come() -> None:
    app = App({})
    in_order = InOrder(app)  # type: ignore[arg-type]
    assert offsets(asyncio.run(in_order.admit(events((RAW, 7), (RAW, 8))))) == [(RAW, 7), (RAW, 8)]
