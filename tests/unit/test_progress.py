"""Repost-expiry stream time from every raw partition's reported progress
(`core.progress.ExpiryClock`), on a fake wall clock, and the ledger's use of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.test_watermark import Ticks
from trending_arxiv.core.ledger import PENDING_PREFIX, Ledger
from trending_arxiv.core.progress import (
    ExpiryClock,
    RawProgress,
    progress_record,
    read_progress_record,
)
from trending_arxiv.settings import WorkerSettings

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp()
HOUR = 3600.0


def test_nothing_expires_until_every_raw_partition_has_reported() -> None:
    clock = ExpiryClock(monotonic=Ticks())
    clock.report(0, {0: RawProgress(10, T0)})
    assert clock.stream_time(0, {0: 10, 1: 0}) is None  # raw partition 1: no report yet
    clock.report(0, {1: RawProgress(0, None)})
    assert clock.stream_time(0, {0: 10, 1: 0}) == T0


def test_a_raw_partition_with_records_unread_holds_stream_time_at_its_progress() -> None:
    """The case two workers lost reposts in: the other worker's raw partition lags by
    hours; stream time stays at that partition's progress until it is read to its end."""
    clock = ExpiryClock(monotonic=Ticks())
    clock.report(3, {0: RawProgress(900, T0 + 8 * HOUR), 1: RawProgress(40, T0)})
    assert clock.stream_time(3, {0: 900, 1: 700}) == T0  # raw 1 lags: its time
    clock.report(3, {1: RawProgress(500, T0 + 2 * HOUR)})
    assert clock.stream_time(3, {0: 900, 1: 700}) == T0 + 2 * HOUR
    assert clock.stream_time(3, {0: 950, 1: 700}) == T0 + 2 * HOUR  # both lag: the least


def test_a_lagging_partition_without_an_event_time_stops_expiry() -> None:
    """A reporter that just restarted knows its offsets but not yet its event times."""
    clock = ExpiryClock(monotonic=Ticks())
    clock.report(0, {0: RawProgress(5, T0), 1: RawProgress(3, None)})
    assert clock.stream_time(0, {0: 5, 1: 9}) is None
    assert clock.stream_time(0, {0: 5, 1: 3}) == T0  # read to its end: left out


def test_read_to_the_end_everywhere_stream_time_advances_with_the_wall_clock() -> None:
    ticks = Ticks()
    clock = ExpiryClock(monotonic=ticks)
    clock.report(0, {0: RawProgress(5, T0), 1: RawProgress(0, None)})
    ends = {0: 5, 1: 0}
    assert clock.stream_time(0, ends) == T0
    ticks.now = 30.0
    assert clock.stream_time(0, ends) == T0 + 30
    # A newer event, read to the end between two sweeps: the advance restarts from it.
    clock.report(0, {0: RawProgress(6, T0 + 10)})
    ticks.now = 31.0
    assert clock.stream_time(0, {0: 6, 1: 0}) == T0 + 30  # never back
    ticks.now = 60.0
    assert clock.stream_time(0, {0: 6, 1: 0}) == T0 + 39


def test_stream_time_never_moves_back_when_a_partition_starts_lagging() -> None:
    ticks = Ticks()
    clock = ExpiryClock(monotonic=ticks)
    clock.report(0, {0: RawProgress(5, T0 + HOUR), 1: RawProgress(2, T0)})
    assert clock.stream_time(0, {0: 5, 1: 2}) == T0 + HOUR
    assert clock.stream_time(0, {0: 5, 1: 9}) == T0 + HOUR  # raw 1 lags behind it now


def test_an_older_report_of_a_raw_partition_changes_nothing() -> None:
    """A new owner re-reads from the commit what the previous owner had reported."""
    clock = ExpiryClock(monotonic=Ticks())
    clock.report(0, {0: RawProgress(100, T0 + HOUR)})
    clock.report(0, {0: RawProgress(60, None)})
    assert clock.stream_time(0, {0: 120}) == T0 + HOUR
    clock.report(0, {0: RawProgress(100, None)})  # same offset, no event time: kept
    assert clock.stream_time(0, {0: 120}) == T0 + HOUR


def test_reports_are_per_routed_partition_and_forgotten_when_no_longer_owned() -> None:
    """A report vouches only for the routed partition it was read on."""
    clock = ExpiryClock(monotonic=Ticks())
    clock.report(0, {0: RawProgress(5, T0)})
    assert clock.stream_time(1, {0: 5}) is None
    clock.report(1, {0: RawProgress(5, T0)})
    clock.keep_only([0])
    assert clock.stream_time(0, {0: 5}) == T0
    assert clock.stream_time(1, {0: 5}) is None


def test_a_progress_record_round_trips_and_a_malformed_one_is_refused() -> None:
    progress = {2: RawProgress(17, T0), 0: RawProgress(0, None)}
    record: dict[str, Any] = progress_record(progress)
    assert record["type"] == "progress"
    assert read_progress_record(record) == progress
    for bad in ({"type": "progress"}, {"raw": {"0": [1]}}, {"raw": {"0": ["1", None]}}):
        with pytest.raises(ValueError):
            read_progress_record(bad)


def _repost(post_id: str, subject: str, moment: float) -> dict[str, Any]:
    entry = {
        "id": post_id,
        "ids": [],
        "src": "bluesky",
        "kind": "repost",
        "aid": "did:plc:bob",
        "ah": "bob",
        "t": datetime.fromtimestamp(moment, UTC).isoformat(),
        "text": "",
        "ref": subject,
    }
    return {"type": "post", "post": entry}


def test_a_repost_read_ahead_of_stream_time_waits_from_its_own_time() -> None:
    """Stream time lags behind a repost read ahead of a lagging partition (8 hours, as
    in a full-speed replay): its wait starts at its own event time. One dated past the
    wall clock (a bad clock) waits from one wait past the wall clock at most."""
    store: dict[str, Any] = {}
    wall = T0 + 10 * HOUR
    ledger = Ledger(store, repost_wait_seconds=HOUR, wall_clock=lambda: wall)
    stream_time = datetime.fromtimestamp(T0, UTC)
    ledger.apply(_repost("r1", "s1", T0 + 8 * HOUR), stream_time)
    ledger.apply(_repost("r2", "s2", T0 + 1000 * HOUR), stream_time)
    assert ledger.expire_pending_at(lambda subject: T0 + 8.9 * HOUR) == 0
    assert ledger.expire_pending_at(lambda subject: T0 + 9.1 * HOUR) == 1  # r1
    assert set(store) == {PENDING_PREFIX + "s2"}
    assert ledger.expire_pending_at(lambda subject: T0 + 11.9 * HOUR) == 0
    assert ledger.expire_pending_at(lambda subject: T0 + 12.1 * HOUR) == 1  # r2: wall + 2 h


def test_expiry_skips_the_subjects_whose_partition_has_no_stream_time() -> None:
    store: dict[str, Any] = {}
    ledger = Ledger(store, repost_wait_seconds=HOUR)
    ledger.apply(_repost("r1", "s1", T0), datetime.fromtimestamp(T0, UTC))
    ledger.apply(_repost("r2", "s2", T0), datetime.fromtimestamp(T0, UTC))
    times = {"s1": T0 + 2 * HOUR, "s2": None}
    assert ledger.expire_pending_at(times.__getitem__) == 1
    assert set(store) == {PENDING_PREFIX + "s2"}
    # The single stream time of one process, as before.
    assert ledger.expire_pending(datetime.fromtimestamp(T0 + 2 * HOUR, UTC)) == 1
    assert not store
    assert ledger.expire_pending(datetime.fromtimestamp(T0, UTC) + timedelta(days=1)) == 0


def test_the_report_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRENDING_PROGRESS_REPORT_SECONDS", "2.5")
    assert WorkerSettings().progress_report_seconds == 2.5
    monkeypatch.setenv("TRENDING_PROGRESS_REPORT_SECONDS", "0")
    with pytest.raises(ValidationError, match="progress_report_seconds"):
        WorkerSettings()
