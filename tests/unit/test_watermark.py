"""Stream time from per-partition progress (`Watermark`), on a fake wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

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


def _reference_current(watermark: Watermark, tick: float, last: float | None) -> float | None:
    """Stream time as the class docstring states it, summed the plain way (the method
    takes one pass and keeps its datetime): must give the same value."""
    if watermark._max is None:
        return None
    active = [
        p for p, at in watermark._active_at.items() if tick - at <= watermark.idle_after_seconds
    ]
    if any(p not in watermark._newest for p in active):
        candidate = last
    elif active:
        candidate = min(watermark._newest[p] for p in active)
    else:
        candidate = watermark._max + max(0.0, tick - watermark._max_seen_at)
    if candidate is None:
        return None
    return candidate if last is None or candidate > last else last


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("observe"), st.integers(0, 4), st.integers(-7200, 7200)),
            st.tuples(st.just("wait"), st.sampled_from([0.5, 2.0, 4.9, 5.0, 5.1, 30.0])),
            st.tuples(st.just("assign"), st.frozensets(st.integers(0, 4), max_size=5)),
            st.tuples(st.just("ask")),
        ),
        max_size=60,
    )
)
def test_current_is_the_minimum_over_active_partitions_whatever_the_sequence(
    steps: list[tuple],
) -> None:
    ticks = Ticks()
    watermark = Watermark(idle_after_seconds=5, monotonic=ticks)
    last: float | None = None
    for step in steps:
        if step[0] == "observe":
            watermark.observe_epoch(step[1], T0.timestamp() + step[2])
        elif step[0] == "wait":
            ticks.now += step[1]
        elif step[0] == "assign":
            watermark.assign(step[1])
        expected = _reference_current(watermark, ticks.now, last)
        got = watermark.current()
        assert (None if got is None else got.timestamp()) == expected
        assert got is None or got.tzinfo is UTC
        last = expected
