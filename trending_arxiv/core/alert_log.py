"""Alerts decided behind a watermark, from a paper's recent mentions: the same alerts
whatever order the mentions arrive in.

The counting state answers "how many now"; it cannot answer "how many distinct accounts
posted in the hour before 10:14 yesterday" once later posts have come (an account counts
at its latest post, and posts a day older than the newest sit in hour buckets). So the
alert rules read their own small history: each paper's `AlertLog` keeps the mentions of
the last day before the moments still to decide (post id, account, when it was added and
when it was withdrawn), and decides a moment only once the watermark has passed it, when
no mention of that moment or earlier can still come.

A mention's moment (`Mention.moment`) is when it became true in event time: a post's
own time, a credited repost's the later of the repost's and its subject's, a removal the
delete's. The watermark is the promise "every mention still to come has a moment at or
after this", which holds for a history whose raw partitions are each in event-time order
(a sorted archive, split in any way; live traffic, up to its lateness).

At each moment the log holds (in event-time order, each moment once), the rules see:
- `posts_1h`: the posts visible then (added at or before it, not yet withdrawn) added in
  the hour ending there, `(m - 1h, m]`; `posts_24h` likewise over the day;
- `accounts_1h`: the distinct accounts among the hour's visible posts;
- `velocity`: `counting.velocity` of those.
An alert id names the paper, the rule and the hour (`alerting.alert_id`), fired at the
first moment of the hour where its rule holds. A mention older than the moments already
decided (late: its partition broke event-time order) joins the history the later moments
see, and is counted (`late`), but its own past moment is not decided again.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from trending_arxiv.core.alerting import AlertRules, alert_id, hour_label
from trending_arxiv.core.counting import velocity
from trending_arxiv.core.json_bytes import kept_json
from trending_arxiv.core.models import Alert, Mention

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
_RULES = ("accounts_1h", "velocity")


def micros(moment: datetime) -> int:
    """`moment` as whole microseconds since the epoch: exact to compare and subtract."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _moment_of(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp // 1_000_000, UTC).replace(microsecond=stamp % 1_000_000)


@dataclass(slots=True)
class AlertLog:
    """One paper's recent mentions, as columns (a post each), and how far its alerts
    are decided."""

    ids: list[str] = field(default_factory=list)  # post ids
    accounts: list[str] = field(default_factory=list)
    added: list[int | None] = field(default_factory=list)  # µs; None: only its removal known
    removed: list[int | None] = field(default_factory=list)  # µs; None: not withdrawn
    #: Every moment before this is decided (µs); None before the first decision.
    decided: int | None = None
    #: The earliest moment still to decide (µs), if any.
    earliest: int | None = None
    #: Rules fired in the hour of the last decided moment (older hours never recur).
    fired_hour: int | None = None
    fired: list[str] = field(default_factory=list)
    #: Mentions that came after their moment was decided.
    late: int = 0

    def add(self, mentions: Iterable[Mention]) -> None:
        """Note mentions of this paper (redelivered ones change nothing)."""
        index: dict[str, int] | None = None
        decided = self.decided
        for mention in mentions:
            stamp = micros(mention.moment)
            if decided is not None and stamp < decided - DAY_US:
                continue  # outside every window still to decide
            if index is None:
                index = {post_id: at for at, post_id in enumerate(self.ids)}
            at = index.get(mention.post_id)
            if at is None:
                at = index[mention.post_id] = len(self.ids)
                self.ids.append(mention.post_id)
                self.accounts.append(mention.account)
                self.added.append(None)
                self.removed.append(None)
            column = self.added if mention.op == "add" else self.removed
            known = column[at]
            if known is not None and known <= stamp:
                continue  # redelivered
            column[at] = stamp
            if decided is not None and stamp < decided:
                self.late += 1
            elif self.earliest is None or stamp < self.earliest:
                self.earliest = stamp

    def pending(self) -> int | None:
        """The earliest moment still to decide (µs), if any."""
        return self.earliest

    def release(self, arxiv_id: str, watermark: int, rules: AlertRules) -> list[Alert]:
        """Decide every moment before `watermark` (µs) and return the alerts they fire.

        Moments at the watermark itself wait: a mention of that moment may still come.
        """
        if self.earliest is None or self.earliest >= watermark:
            return []
        start = self.earliest
        moments = sorted(
            {s for s in self.added if s is not None and start <= s < watermark}
            | {s for s in self.removed if s is not None and start <= s < watermark}
        )
        alerts: list[Alert] = []
        if _may_fire(self.added, self.removed, moments, rules):
            for moment, numbers in _windows(self, moments):
                hour = moment // HOUR_US
                if hour != self.fired_hour:
                    self.fired_hour, self.fired = hour, []
                for rule in _rules_met(numbers, rules):
                    if rule not in self.fired:
                        self.fired.append(rule)
                        alerts.append(_alert(arxiv_id, rule, _moment_of(moment), numbers, rules))
        decided = self.decided = moments[-1] + 1
        later = [s for s in self.added if s is not None and s >= decided]
        later += [s for s in self.removed if s is not None and s >= decided]
        self.earliest = min(later) if later else None
        self._forget_through(decided - DAY_US)
        return alerts

    def _forget_through(self, limit: int) -> None:
        """Drop the posts no window still to decide can see: added at or before `limit`
        (or only withdrawn, at or before it)."""
        keep = [
            at
            for at, added in enumerate(self.added)
            if (added if added is not None else self.removed[at] or 0) > limit
        ]
        if len(keep) == len(self.ids):
            return
        self.ids = [self.ids[at] for at in keep]
        self.accounts = [self.accounts[at] for at in keep]
        self.added = [self.added[at] for at in keep]
        self.removed = [self.removed[at] for at in keep]

    def pack(self) -> bytes:
        """The stored form (`unpack` reverses it): the decided moment first
        (`_decided_of` reads it alone)."""
        return kept_json([
            self.decided, self.earliest, self.fired_hour, self.fired, self.late,
            self.ids, self.accounts, self.added, self.removed,
        ])  # fmt: skip

    @classmethod
    def unpack(cls, stored: bytes | str | None) -> AlertLog:
        if stored is None:
            return cls()
        decided, earliest, fired_hour, fired, late, ids, accounts, added, removed = orjson.loads(
            stored
        )
        return cls(ids, accounts, added, removed, decided, earliest, fired_hour, fired, late)


def _may_fire(
    added: list[int | None], removed: list[int | None], moments: list[int], rules: AlertRules
) -> bool:
    """Whether any rule can hold at one of `moments` (ascending): both need at least
    `velocity_min_posts_1h` or `min_accounts_1h` posts in the hour before the moment, so
    that many posts added within less than an hour of each other, by the last moment.
    Most papers have far fewer: their moments are decided without counting."""
    least = min(rules.velocity_min_posts_1h, rules.min_accounts_1h)
    low, high = moments[0] - HOUR_US, moments[-1]
    stamps = sorted(s for s in added if s is not None and low < s <= high)
    if least <= 1:
        return bool(stamps)
    return any(
        stamps[at + least - 1] - stamps[at] < HOUR_US for at in range(len(stamps) - least + 1)
    )


def _windows(log: AlertLog, moments: list[int]) -> Iterator[tuple[int, dict[str, float]]]:
    """The rules' numbers at each of `moments` (ascending), in one pass over the posts.

    Events, each applied before the first moment at or after its time: a post enters both
    windows when added, leaves the hour an hour later and the day a day later, and leaves
    both when withdrawn (a withdrawal at or before its addition: never visible)."""
    events: list[tuple[int, int, int]] = []  # (time, kind, post)
    first, last = moments[0], moments[-1]
    for at, added in enumerate(log.added):
        removed = log.removed[at]
        if added is None or (removed is not None and removed <= added):
            continue
        if added + DAY_US <= first or added > last:
            continue  # in no window at any of the moments
        events.append((added, 0, at))
        events.append((added + HOUR_US, 1, at))
        events.append((added + DAY_US, 2, at))
        if removed is not None:
            events.append((removed, 3, at))
    events.sort()
    accounts_of = log.accounts
    in_hour: set[int] = set()
    in_day: set[int] = set()
    accounts: Counter[str] = Counter()
    cursor, total = 0, len(events)
    for moment in moments:
        while cursor < total and events[cursor][0] <= moment:
            _, kind, at = events[cursor]
            cursor += 1
            account = accounts_of[at]
            if kind == 0:
                in_hour.add(at)
                in_day.add(at)
                accounts[account] += 1
            if kind in (1, 3) and at in in_hour:
                in_hour.discard(at)
                accounts[account] -= 1
                if not accounts[account]:
                    del accounts[account]
            if kind in (2, 3):
                in_day.discard(at)
        counts = {"1h": len(in_hour), "24h": len(in_day)}
        yield (
            moment,
            {
                "posts_1h": float(counts["1h"]),
                "accounts_1h": float(len(accounts)),
                "posts_24h": float(counts["24h"]),
                "velocity": velocity(counts),
            },
        )


def _rules_met(numbers: dict[str, float], rules: AlertRules) -> list[str]:
    met = []
    if numbers["accounts_1h"] >= rules.min_accounts_1h:
        met.append("accounts_1h")
    if numbers["posts_1h"] >= rules.velocity_min_posts_1h and (
        numbers["velocity"] >= rules.velocity_ratio
    ):
        met.append("velocity")
    return met


def _alert(
    arxiv_id: str, rule: str, moment: datetime, numbers: dict[str, float], rules: AlertRules
) -> Alert:
    posts_1h, accounts_1h = int(numbers["posts_1h"]), int(numbers["accounts_1h"])
    if rule == "accounts_1h":
        reason = (
            f"{accounts_1h} distinct accounts posted about {arxiv_id} within an hour "
            f"(threshold {rules.min_accounts_1h})"
        )
    else:
        reason = (
            f"{arxiv_id} got {posts_1h} posts in the last hour, {numbers['velocity']:.1f}x "
            f"its hourly rate over the previous day (threshold {rules.velocity_ratio:g}x)"
        )
    return Alert(
        alert_id=alert_id(arxiv_id, rule, moment),
        arxiv_id=arxiv_id,
        rule=rule,
        reason=reason,
        triggered_at=moment,
        numbers=dict(numbers),
    )


class AlertBook:
    """The alert logs of one mentions partition's papers, packed in `store` (a table),
    and which papers have moments still to decide."""

    def __init__(self, store: MutableMapping[str, Any]) -> None:
        self.store = store
        self._due: list[tuple[int, str]] = []  # (earliest moment to decide, paper): a heap
        self.late = 0  # mentions noted after their moment was decided (see `AlertLog`)

    def index(self, arxiv_ids: Iterable[str]) -> None:
        """Note what these papers' stored logs (recovered, or new here) have to decide."""
        for arxiv_id in arxiv_ids:
            earliest = self._log(arxiv_id).pending()
            if earliest is not None:
                heapq.heappush(self._due, (earliest, arxiv_id))

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
            _, arxiv_id = heapq.heappop(self._due)
            log = self._log(arxiv_id)
            earliest = log.pending()
            if earliest is None or earliest >= watermark:
                continue  # an entry made stale by a later release of the paper
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
            decided = _decided_of(stored)
            stale = decided is not None and decided <= watermark - DAY_US
            if stale and AlertLog.unpack(stored).pending() is None:
                del self.store[arxiv_id]
                dropped += 1
        return dropped

    def _log(self, arxiv_id: str) -> AlertLog:
        return AlertLog.unpack(self.store.get(arxiv_id))

    def _save(self, arxiv_id: str, log: AlertLog) -> None:
        self.store[arxiv_id] = log.pack()
        earliest = log.pending()
        if earliest is not None:
            heapq.heappush(self._due, (earliest, arxiv_id))


def _decided_of(stored: bytes | str) -> int | None:
    """A stored log's decided moment (its first field) without reading the rest."""
    text = stored[:32].decode() if isinstance(stored, bytes) else stored[:32]
    head = text[1 : text.index(",")]
    return None if head == "null" else int(head)


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


__all__ = ["AlertBook", "AlertLog", "alerts_in_event_time", "hour_label", "micros"]
