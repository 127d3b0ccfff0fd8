"""Stream time: the newest event time seen, advancing with the wall clock when idle.

Windows are evaluated at stream time, so a replay of 2016 posts is counted as of 2016,
and live data (whose event times track the wall clock) is counted as of now. When no
event arrives, `now()` moves stream time forward by the wall-clock time elapsed since
the newest event was seen, so windows keep decaying.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from trending_arxiv.core.models import parse_utc


class StreamClock:
    tz = UTC

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self.stream_time: datetime | None = None
        self._observed_at: float = 0.0

    def observe(self, moment: datetime) -> None:
        """Note an event time; stream time only moves forward."""
        if self.stream_time is None or moment > self.stream_time:
            self.stream_time = moment
            self._observed_at = self._monotonic()

    def observe_iso(self, value: str) -> None:
        self.observe(parse_utc(value))

    def now(self) -> datetime | None:
        """Stream time advanced by the idle wall-clock time; None before any event."""
        if self.stream_time is None:
            return None
        idle = max(0.0, self._monotonic() - self._observed_at)
        return self.stream_time + timedelta(seconds=idle)
