"""Bounds on a paper's hour for the alert precheck, summed in O(log n) a step.

`count_and_alert` evaluates the rules at every minute of event time a paper's mentions
fall in; a replayed history gives a busy paper hundreds of such steps a batch. The
precheck's exact sums look up to ~400 minute buckets a step; these bounds, from one
snapshot of the buckets per call (sorted ends, prefix sums), rule most steps out with a
few bisections instead. They are bounds, never the answer: a step they do not rule out
goes on to the exact check, so alerts are the same with or without them
(`tests/unit/test_alerts_event_time.py`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate
from typing import TYPE_CHECKING

from trending_arxiv.core.counting import HOUR, LATEST, MINUTE, POSTS, PaperState
from trending_arxiv.core.models import Mention

if TYPE_CHECKING:
    from trending_arxiv.core.alerting import AlertRules

DAY = 24 * HOUR


class HourBounds:
    """The buckets of a paper as they were at the snapshot, plus what was applied since.

    Since the snapshot, each applied add raised the posts and the accounts-at-latest-post
    of one bucket by 1: the minute of its time, or the hour holding that minute (so it
    is counted in a window holding either end). Each applied removal raised the accounts
    of some bucket by at most 1 (the account's latest post moves back) and lowered the
    posts of one by at most 1. Minute buckets fold into hours only when the newest
    post's minute moves; those folded since the snapshot (fold edges are 25 h back) can
    move posts only in the windows of steps more than an hour before the newest post,
    where the bounds are then not used.
    """

    def __init__(self, state: PaperState) -> None:
        rows = sorted(
            (int(key), bucket[POSTS], bucket[LATEST])
            for buckets in (state["min"], state["hr"])
            for key, bucket in buckets.items()
        )
        self.ends = [row[0] for row in rows]
        self.posts = list(accumulate((row[1] for row in rows), initial=0))
        self.latest = list(accumulate((row[2] for row in rows), initial=0))
        self.added_minutes: list[int] = []  # minute ends of the adds since, ascending
        self.removals = 0
        # Minute buckets fold only when the newest post's minute moves (`apply_mentions`).
        self.newest_minute = None if state["last"] is None else state["last"] // MINUTE

    def note_applied(self, mentions: Iterable[Mention]) -> None:
        """These mentions (of one step, later than any before) were applied."""
        for mention in mentions:
            if mention.op == "add":
                moment = mention.created_at.timestamp()
                self.added_minutes.append(-int(-moment // MINUTE) * MINUTE)
            else:
                self.removals += 1

    def _adds(self, after: int, through: int) -> int:
        """Adds since the snapshot that may have landed in a bucket ending in the range."""
        added = self.added_minutes
        return bisect_right(added, through) - bisect_right(added, after - HOUR)

    def _sum(self, prefix: list[int], after: int, through: int) -> int:
        """The snapshot's sum over the buckets ending in (after, through]."""
        ends = self.ends
        return prefix[bisect_right(ends, through)] - prefix[bisect_right(ends, after)]

    def rule_out(
        self,
        state: PaperState,
        end: int,
        rules: AlertRules,
        accounts_open: bool,
        velocity_open: bool,
    ) -> bool:
        """True only if no rule can fire at the step whose windows end at `end` (a
        minute end); False when unsure."""
        last = state["last"]
        if last is None:
            return False
        if last // MINUTE != self.newest_minute and end < last - HOUR:
            return False  # folds since the snapshot may have moved posts in these windows
        if accounts_open:
            in_hour = self._adds(end - HOUR, end) + self.removals
            if self._sum(self.latest, end - HOUR, end) + in_hour >= rules.min_accounts_1h:
                return False
        if not velocity_open:
            return True
        posts = self._sum(self.posts, end - HOUR, end) + self._adds(end - HOUR, end)
        if posts < max(rules.velocity_min_posts_1h, rules.velocity_ratio):
            return True
        earlier = self._sum(self.posts, end - DAY, end - HOUR) - self.removals
        # As `alerting._fires`: velocity is below the ratio once `earlier` is past this.
        return earlier > 23.0 * posts / (rules.velocity_ratio - 1e-6)


def worth_a_snapshot(steps: int) -> bool:
    """Whether a call with this many mentions should take a snapshot (it costs about as
    much as a couple of dozen exact steps on a busy paper)."""
    return steps >= 24


class LazyHourBounds:
    """One `count_and_alert` call's `HourBounds`: taken at the first step that asks for
    them (a snapshot of the state as it is then), and only in a call with steps enough
    to be worth one (`worth_a_snapshot`); kept up to date with what is applied after."""

    def __init__(self, state: PaperState, steps: int) -> None:
        self._state = state
        self._wanted = worth_a_snapshot(steps)
        self._bounds: HourBounds | None = None

    def get(self) -> HourBounds | None:
        """The bounds (taken now if not yet), or None in a call too short for them."""
        if self._bounds is None and self._wanted:
            self._bounds = HourBounds(self._state)
        return self._bounds

    def note_applied(self, mentions: Iterable[Mention]) -> None:
        """See `HourBounds.note_applied`; nothing before the snapshot is taken."""
        if self._bounds is not None:
            self._bounds.note_applied(mentions)
