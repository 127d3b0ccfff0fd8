"""Stream time for repost expiry, from every raw partition's progress, whichever worker
reads it.

A repost that names only its subject waits in the subject's ledger partition. The
subject may still sit unread on a raw partition another worker reads, hours of event
time behind in a full-speed replay, so the ledger's owner must not expire the repost
by its own raw partitions' time. Instead, each worker reports, on every routed
partition and after the routed records it describes, how far it has parsed each of its
raw partitions (`progress_record`). The ledger's owner keeps the newest report of each
raw partition per routed partition (`ExpiryClock`) and takes stream time from the ones
with records still unread, which it learns from the broker's end offsets at each sweep.

A report read on a routed partition vouches for everything routed there before it:
the reporter sent it after those records, on the same partition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PROGRESS_TYPE = "progress"


@dataclass(frozen=True, slots=True)
class RawProgress:
    """How far one raw partition has been parsed and routed."""

    offset: int  # the next raw offset: every record before it has been parsed and routed
    newest: float | None  # the newest event time parsed there (epoch s), if known
    #: No post still to come there is older (epoch s; `Watermark.vouched`), if known.
    vouched: float | None = None


def progress_record(progress: Mapping[int, RawProgress]) -> dict[str, Any]:
    """The routed-topic record reporting `progress` (raw partition -> its progress)."""
    return {
        "type": PROGRESS_TYPE,
        "raw": {
            str(p): [each.offset, each.newest, each.vouched] for p, each in sorted(progress.items())
        },
    }


def read_progress_record(record: Mapping[str, Any]) -> dict[int, RawProgress]:
    """The progress a `progress_record` reports; ValueError if it is malformed."""
    raw = record.get("raw")
    if not isinstance(raw, dict):
        raise ValueError("progress record without a 'raw' object")
    progress: dict[int, RawProgress] = {}
    for partition, value in raw.items():
        # [offset, newest], or [offset, newest, vouched] since alerts wait for the latter.
        if not (isinstance(value, list) and len(value) in (2, 3)):
            raise ValueError(f"progress of raw partition {partition!r} is not [offset, newest]")
        offset, newest, vouched = (*value, None) if len(value) == 2 else value
        times_ok = all(t is None or isinstance(t, int | float) for t in (newest, vouched))
        if not isinstance(offset, int) or not times_ok:
            raise ValueError(f"progress of raw partition {partition!r} has bad types: {value!r}")
        progress[int(partition)] = RawProgress(
            offset,
            None if newest is None else float(newest),
            None if vouched is None else float(vouched),
        )
    return progress


class ExpiryClock:
    """Stream time for repost expiry in each routed partition this worker owns.

    `stream_time(routed, ends)` is, over the raw partitions with records still unread
    (reported offset below the broker's end offset), the minimum of their newest parsed
    event time: a subject still to come on a lagging partition is never older than
    that partition's progress, and a waiting repost is never older than its subject.
    When every raw partition is read to its end, it is the newest event time reported,
    advanced by the wall-clock time since a sweep first saw it, so live reposts whose
    subject never comes expire. It is None (nothing expires) while some raw partition
    has no report, or a lagging one has no event time yet. It never moves back.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._reports: dict[int, dict[int, RawProgress]] = {}  # routed -> raw -> progress
        # routed -> (the newest event time swept, when it was first swept: monotonic)
        self._newest_swept: dict[int, tuple[float, float]] = {}
        self._last: dict[int, float] = {}  # routed -> the last value returned

    def report(self, routed: int, progress: Mapping[int, RawProgress]) -> None:
        """A progress record read on routed partition `routed`.

        A report older than the one kept (a lower offset: a new owner of the raw
        partition re-reading what the previous owner had reported) changes nothing.
        """
        reports = self._reports.setdefault(routed, {})
        for raw, each in progress.items():
            kept = reports.get(raw)
            # Equal offsets: the one that knows an event time (a restarted reporter
            # re-reads with none until it parses something).
            if kept is None or _rank(each) > _rank(kept):
                reports[raw] = each

    def vouched(self, routed: int, raw_partitions: int) -> float | None:
        """What the raw partitions' reports read on `routed` promise of the routed
        records still to come there (epoch s): none is older than the least of them.
        None until all `raw_partitions` have promised something."""
        reports = self._reports.get(routed, {})
        promises = [
            reports[raw].vouched if raw in reports else None for raw in range(raw_partitions)
        ]
        if not promises or any(promise is None for promise in promises):
            return None
        return min(promise for promise in promises if promise is not None)

    def keep_only(self, routed_partitions: Iterable[int]) -> None:
        """Forget the routed partitions this worker no longer owns (stale if they return)."""
        owned = set(routed_partitions)
        for table in (self._reports, self._newest_swept, self._last):
            for routed in [r for r in table if r not in owned]:
                del table[routed]

    def stream_time(self, routed: int, ends: Mapping[int, int]) -> float | None:
        """Stream time (epoch s) of routed partition `routed`, given each raw
        partition's end offset now (see the class docstring)."""
        reports = self._reports.get(routed, {})
        if not ends or any(raw not in reports for raw in ends):
            return None
        lagging = [reports[raw].newest for raw, end in ends.items() if reports[raw].offset < end]
        if lagging:
            if any(newest is None for newest in lagging):
                return None
            candidate = min(newest for newest in lagging if newest is not None)
        else:
            newest = [m for raw in ends if (m := reports[raw].newest) is not None]
            if not newest:
                return None
            now = self._monotonic()
            swept = self._newest_swept.get(routed)
            if swept is None or max(newest) > swept[0]:
                swept = self._newest_swept[routed] = (max(newest), now)
            candidate = swept[0] + (now - swept[1])
        last = self._last.get(routed)
        if last is not None and last > candidate:
            return last
        self._last[routed] = candidate
        return candidate


def _rank(progress: RawProgress) -> tuple[int, bool, float]:
    # At the same offset, a later promise: an idle partition's advances with time.
    promise = float("-inf") if progress.vouched is None else progress.vouched
    return progress.offset, progress.newest is not None, promise
