"""Stream time for alerts: what each raw partition promises (`Watermark.vouched`), the
watermark records on the mentions topic, and each mentions partition's watermark
(`AlertClock`)."""

from __future__ import annotations

import pytest

from tests.unit.test_watermark import Ticks
from trending_arxiv.core.alert_clock import (
    WATERMARK_HEADERS,
    AlertClock,
    is_watermark,
    read_watermark_record,
    watermark_record,
)
from trending_arxiv.core.clock import IDLE_STEP, Watermark
from trending_arxiv.core.envelope import ENVELOPE_HEADERS
from trending_arxiv.core.progress import ExpiryClock, RawProgress, read_progress_record

T0 = 1_454_896_800.0  # 2016-02-08T02:00Z


def test_an_active_partition_promises_its_newest_post_less_the_lateness() -> None:
    ticks = Ticks()
    watermark = Watermark(idle_after_seconds=5, monotonic=ticks)
    watermark.assign([0, 1])
    watermark.observe_epoch(0, T0 + 60)
    watermark.observe_epoch(1, T0)
    assert watermark.vouched(0) == T0 + 60
    assert watermark.vouched(1, lateness=30) == T0 - 30
    # Partition 1 goes quiet: it promises what the active partition 0 promises.
    ticks.now = 4
    watermark.observe_epoch(0, T0 + 120)
    ticks.now = 8
    assert watermark.vouched(1) == T0 + 120
    # Unless records are still unread there (by the broker's end offsets).
    assert watermark.vouched(1, lagging={1}) == T0
    # All quiet: just past the newest post read anywhere, and it stays there.
    ticks.now = 20
    assert watermark.vouched(0) == watermark.vouched(1) == T0 + 120 + IDLE_STEP
    ticks.now = 500
    assert watermark.vouched(1) == T0 + 120 + IDLE_STEP


def test_a_partition_never_heard_of_holds_back_until_idle_after_the_first_post() -> None:
    ticks = Ticks()
    watermark = Watermark(idle_after_seconds=5, monotonic=ticks)
    watermark.assign([0, 1])
    ticks.now = 100  # long idle before the replay starts
    assert watermark.vouched(1) is None
    watermark.observe_epoch(0, T0)
    ticks.now = 103
    assert watermark.vouched(1) is None  # its first posts may be older than partition 0's
    ticks.now = 106
    assert watermark.vouched(1) == T0 + IDLE_STEP  # partition 0 idle too by now
    watermark.observe_epoch(0, T0 + 10)
    assert watermark.vouched(1) == T0 + 10


def test_the_clock_waits_for_every_writer_and_takes_the_least_promise() -> None:
    clock = AlertClock(ledger_partitions=2)
    clock.note(0, {"in_place": {0: T0 + 10, 1: T0 + 5}, "routed": {0: T0 + 7}})
    assert clock.watermark(0) is None  # routed 1 has promised nothing yet
    clock.note(0, {"in_place": {}, "routed": {1: T0 + 3}})
    assert clock.watermark(0) == int((T0 + 3) * 1_000_000)
    assert clock.watermark(1) is None  # promises are per mentions partition
    # A promise never moves back (a new owner re-reads from its last commit).
    clock.note(0, {"in_place": {}, "routed": {1: T0 + 1}})
    assert clock.watermark(0) == int((T0 + 3) * 1_000_000)
    clock.note(0, {"in_place": {}, "routed": {1: T0 + 9}})
    assert clock.watermark(0) == int((T0 + 5) * 1_000_000)
    clock.forget(0)
    assert clock.watermark(0) is None


def test_watermark_records_round_trip_and_refuse_what_is_malformed() -> None:
    value = watermark_record({0: T0, 3: T0 + 1.5}, {1: T0 - 2})
    assert read_watermark_record(value) == {"in_place": {0: T0, 3: T0 + 1.5}, "routed": {1: T0 - 2}}
    for bad in (b"[]", b'{"type":"progress"}', b'{"type":"watermark","in_place":{}}',
                b'{"type":"watermark","in_place":{"0":"x"},"routed":{}}', b"not json"):  # fmt: skip
        with pytest.raises(ValueError):
            read_watermark_record(bad)
    assert is_watermark(WATERMARK_HEADERS) and is_watermark({"trending-watermark": b"1"})
    assert not is_watermark(ENVELOPE_HEADERS) and not is_watermark(None)


def test_progress_reports_carry_the_promise_and_older_ones_still_read() -> None:
    old = read_progress_record({"type": "progress", "raw": {"0": [5, T0]}})
    assert old == {0: RawProgress(5, T0, None)}
    new = read_progress_record({"type": "progress", "raw": {"0": [5, T0, T0 - 1]}})
    assert new == {0: RawProgress(5, T0, T0 - 1)}
    clock = ExpiryClock()
    clock.report(0, {0: RawProgress(5, T0, T0), 1: RawProgress(2, None, None)})
    assert clock.vouched(0, raw_partitions=2) is None
    # At the same offset, a later promise (an idle partition's) replaces the earlier one.
    clock.report(0, {1: RawProgress(2, None, T0 - 50)})
    assert clock.vouched(0, raw_partitions=2) == T0 - 50
    clock.report(0, {1: RawProgress(2, None, T0 + 50)})
    assert clock.vouched(0, raw_partitions=2) == T0
