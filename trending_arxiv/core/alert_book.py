"""The alert logs of a mentions partition, kept in a table (`AlertBook`), and the
reference every order of mentions must match (`alerts_in_event_time`). One paper's log,
its rules and its stored form are `core.alert_log`."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from trending_arxiv.core.alert_log import DAY_US, AlertLog, decided_of
from trending_arxiv.core.alerting import AlertRules
from trending_arxiv.core.models import Alert, Mention


class AlertBook:
    """The alert logs of one mentions partition's papers, packed in `store` (a table),
    and which papers have moments still to decide."""

    def __init__(self, store: MutableMapping[str, Any]) -> None:
        self.store = store
        self._due: list[tuple[int, str]] = []  # (earliest moment to decide, paper): a heap
        #: Each queued paper's earliest moment: the heap entries that differ are stale,
        #: skipped without reading the log.
        self._queued: dict[str, int] = {}
        self.late = 0  # mentions noted after their moment was decided (see `AlertLog`)

    def index(self, arxiv_ids: Iterable[str]) -> None:
        """Note what these papers' stored logs (recovered, or new here) have to decide."""
        for arxiv_id in arxiv_ids:
            self._queue(arxiv_id, self._log(arxiv_id).pending())

    def add(
        self,
        by_paper: Mapping[str, Iterable[Mention]],
        watermark: int | None,
        rules: AlertRules,
    ) -> list[Alert]:
        """Note a batch's mentions (by paper), then decide every moment before
        `watermark` (µs; None: nothing yet) and return the alerts they fire."""
        alerts: list[Alert] = []
        for arxiv_id, mentions in by_paper.items():
            log = self._log(arxiv_id)
            late = log.late
            log.add(mentions)
            self.late += log.late - late
            if watermark is not None:
                alerts += log.release(arxiv_id, watermark, rules)
            self._save(arxiv_id, log)
        if watermark is not None:
            alerts += self.release(watermark, rules)
        return alerts

    def release(self, watermark: int, rules: AlertRules) -> list[Alert]:
        """Decide every paper's moments before `watermark` (µs); the alerts they fire,
        in the order of the papers' earliest moments."""
        alerts: list[Alert] = []
        while self._due and self._due[0][0] < watermark:
            moment, arxiv_id = heapq.heappop(self._due)
            if self._queued.get(arxiv_id) != moment:
                continue  # replaced by a later entry of the paper
            del self._queued[arxiv_id]
            log = self._log(arxiv_id)
            alerts += log.release(arxiv_id, watermark, rules)
            self._save(arxiv_id, log)
        return alerts

    def forget_stale(self, arxiv_ids: Iterable[str], watermark: int) -> int:
        """Drop the logs of these papers that no moment still to come can see: decided,
        and a day before `watermark` (µs). Returns how many."""
        dropped = 0
        for arxiv_id in arxiv_ids:
            stored = self.store.get(arxiv_id)
            if stored is None:
                continue
            decided = decided_of(stored)
            stale = decided is not None and decided <= watermark - DAY_US
            if stale and AlertLog.unpack(stored).pending() is None:
                del self.store[arxiv_id]
                self._queued.pop(arxiv_id, None)
                dropped += 1
        return dropped

    def _log(self, arxiv_id: str) -> AlertLog:
        return AlertLog.unpack(self.store.get(arxiv_id))

    def _save(self, arxiv_id: str, log: AlertLog) -> None:
        self.store[arxiv_id] = log.pack()
        self._queue(arxiv_id, log.pending())

    def _queue(self, arxiv_id: str, earliest: int | None) -> None:
        if earliest is None:
            self._queued.pop(arxiv_id, None)
        elif self._queued.get(arxiv_id) != earliest:
            self._queued[arxiv_id] = earliest
            heapq.heappush(self._due, (earliest, arxiv_id))


def alerts_in_event_time(mentions: Iterable[Mention], rules: AlertRules) -> list[Alert]:
    """The reference: every paper's alerts over its whole history, in the order of their
    moments (ties by paper), as if the watermark passed each moment after all its
    mentions had come."""
    by_paper: dict[str, list[Mention]] = {}
    for mention in mentions:
        by_paper.setdefault(mention.arxiv_id, []).append(mention)
    alerts: list[Alert] = []
    for arxiv_id, history in by_paper.items():
        log = AlertLog()
        log.add(history)  # once: `add` indexes the log's posts at each call
        alerts += log.release(arxiv_id, _NEVER, rules)
    return sorted(alerts, key=lambda a: (a.triggered_at, a.arxiv_id, a.rule))


_NEVER = 2**62


__all__ = ["AlertBook", "alerts_in_event_time"]
