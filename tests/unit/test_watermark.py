"""Stream time from per-partition progress (`Watermark`), on a fake wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trending_arxiv.core.clock import Watermark

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_lagging_partition_holds_stream_time_back() -> None:
    ticks = Ticks()
    watermark = Watermark(idle_after_seconds=5, monotonic=ticks)
    watermark.assign([0, 1])
    assert watermark.current() is None
    watermark.observe(0, T0 + timedelta(hours=2))
    assert watermark.current() is None  # partition 1 not heard of yet
    watermark.observe(1, T0)
    assert watermark.current() == T0
    watermark.observe(0, T0 + timedelta(hours=3))
    assert watermark.current() == T0  # partition 1 lags: stream time waits for it
    watermark.observe(1, T0 + timedelta(minutes=5))
    assert watermark.current() == T0 + timedelta(minutes=5)
    assert watermark.newest() == T0 + timedelta(hours=3)


def test_an_idle_partition_is_left_out_and_all_idle_advances_with_the_wall_clock() -> None:
    ticks = Ticks()
    watermark = Watermark(idle_after_seconds=5, monotonic=ticks)
    watermark.assign([0, 1, 2])
    watermark.observe(0, T0)
    watermark.observe(1, T0 + timedelta(minutes=1))
    ticks.now = 4.0
    watermark.observe(1, T0 + timedelta(minutes=2))
    assert watermark.current() is None  # partition 2 may still have older events
    ticks.now = 6.0  # partitions 0 and 2 silent for more than 5 s: left out
    assert watermark.current() == T0 + timedelta(minutes=2)
    watermark.observe(0, T0 + timedelta(seconds=30))  # back, but behind: never moves back
    assert watermark.current() == T0 + timedelta(minutes=2)
    ticks.now = 20.0  # every partition idle: the newest event plus the idle time
    assert watermark.current() == T0 + timedelta(minutes=2, seconds=16)


def test_partitions_no_longer_assigned_are_forgotten() -> None:
    ticks = Ticks()
    watermark = Watermark(idle_after_seconds=5, monotonic=ticks)
    watermark.assign([0, 1])
    watermark.observe(0, T0)
    watermark.observe(1, T0 + timedelta(hours=1))
    assert watermark.current() == T0
    watermark.assign([1])  # partition 0 went to another worker
    assert watermark.current() == T0 + timedelta(hours=1)
