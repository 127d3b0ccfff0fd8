"""Alert rules over a paper's count update: pure, deduped by an alert id.

An alert id names the paper, the rule and the window bucket it fired in (the hour of
stream time), so one paper crossing one threshold yields one alert per bucket however
often its counts are refreshed, and a redelivered update yields the same id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from trending_arxiv.core import counting
from trending_arxiv.core.counting import PaperState
from trending_arxiv.core.models import Alert, CountUpdate, Mention


@dataclass(frozen=True)
class AlertRules:
    """Thresholds; see `WorkerSettings` for the environment variables that set them."""

    min_accounts_1h: int = 10
    velocity_ratio: float = 5.0
    velocity_min_posts_1h: int = 5


def alert_id(arxiv_id: str, rule: str, moment: datetime) -> str:
    """The id of `rule`'s alert for a paper in the hour (of stream time) of `moment`."""
    return f"{arxiv_id}:{rule}:{moment.strftime('%Y-%m-%dT%H')}"


def evaluate(update: CountUpdate, rules: AlertRules) -> list[Alert]:
    """The alerts this update triggers (before dedupe against alerts already sent)."""
    alerts: list[Alert] = []
    accounts_1h = update.accounts["1h"]
    posts_1h = update.posts["1h"]
    numbers = {
        "posts_1h": float(posts_1h),
        "accounts_1h": float(accounts_1h),
        "posts_24h": float(update.posts["24h"]),
        "velocity": update.velocity,
        "trend_score": update.trend_score,
    }
    if accounts_1h >= rules.min_accounts_1h:
        alerts.append(
            Alert(
                alert_id=alert_id(update.arxiv_id, "accounts_1h", update.as_of),
                arxiv_id=update.arxiv_id,
                rule="accounts_1h",
                reason=(
                    f"{accounts_1h} distinct accounts posted about {update.arxiv_id} within "
                    f"an hour (threshold {rules.min_accounts_1h})"
                ),
                triggered_at=update.as_of,
                numbers=numbers,
            )
        )
    if posts_1h >= rules.velocity_min_posts_1h and update.velocity >= rules.velocity_ratio:
        alerts.append(
            Alert(
                alert_id=alert_id(update.arxiv_id, "velocity", update.as_of),
                arxiv_id=update.arxiv_id,
                rule="velocity",
                reason=(
                    f"{update.arxiv_id} got {posts_1h} posts in the last hour, "
                    f"{update.velocity:.1f}x its hourly rate over the previous day "
                    f"(threshold {rules.velocity_ratio:g}x)"
                ),
                triggered_at=update.as_of,
                numbers=numbers,
            )
        )
    return alerts


def _step(moment: datetime) -> tuple[float, str]:
    """What the numbers and the alert ids depend on: the minute the windows end at and
    the hour bucket of the ids (moments in one step give the same alerts)."""
    return -(-moment.timestamp() // counting.MINUTE), moment.strftime("%Y-%m-%dT%H")


def count_and_alert(
    arxiv_id: str,
    state: PaperState,
    mentions: Iterable[Mention],
    accounts: counting.AccountStore,
    rules: AlertRules,
    fired: dict[str, float],
    half_life_hours: float = counting.DEFAULT_HALF_LIFE_HOURS,
    evaluated_next: datetime | None = None,
) -> list[Alert]:
    """Apply one paper's mentions to its counting state in event-time order and return
    the new alerts they trigger, the rules evaluated at each step of event time.

    Alerts are about event time: however the mentions arrive (a replayed file lands in
    one batch; the worker reads the raw posts' partitions one after another, so a
    paper's mentions come as several runs over the same days), the rules see the
    history as it happened — a paper that went from 0 to 97 accounts over a day alerts
    in the hours it happened, not never. Alerts already in `fired` (alert id -> event
    time) are not returned again; new ones are added to it. `evaluated_next`: the
    moment the caller evaluates the rules at right after (the worker's count update);
    a last step equal to it is left to the caller.

    Exact when each call's mentions are not older than the paper's newest post counted
    before (one batch, or batches in event-time order: what `simulate` and a
    one-partition replay give). A late post more than a day older than that newest post
    lands in an hour bucket, which the rules of its own past hour cannot see, and an
    account counts at its latest post only: alerts for such late history may be missed
    (never invented).
    """
    alerts: list[Alert] = []
    pending: list[Mention] = []
    step: tuple[float, str] | None = None
    moment: datetime | None = None

    def evaluate_step() -> None:
        assert moment is not None
        counting.apply_mentions(state, pending, accounts)
        pending.clear()
        if not _could_fire(state, moment, rules, fired, arxiv_id):
            return
        update = counting.count_update(arxiv_id, state, moment, half_life_hours)
        for alert in evaluate(update, rules):
            if alert.alert_id not in fired:
                fired[alert.alert_id] = moment.timestamp()
                alerts.append(alert)

    # A stable sort: mentions of one moment keep their order (an add before its removal).
    for mention in sorted(mentions, key=lambda m: m.created_at):
        next_step = _step(mention.created_at)
        if pending and next_step != step:
            evaluate_step()
        step, moment = next_step, mention.created_at
        pending.append(mention)
    if pending:
        if evaluated_next is not None and step == _step(evaluated_next):
            counting.apply_mentions(state, pending, accounts)
        else:
            evaluate_step()
    return alerts


def _could_fire(
    state: PaperState,
    moment: datetime,
    rules: AlertRules,
    fired: dict[str, float],
    arxiv_id: str,
) -> bool:
    """A cheap bound before the full count (which walks every bucket): False only when no
    rule can fire a new alert at `moment`.

    Both ids of the moment's hour already fired: nothing new. Else the hour's posts and
    accounts: within 23 hours of the paper's newest post the hour's window only holds
    minute buckets (they cover the 25 hours up to it), so 60 lookups give them exactly;
    velocity is at most posts / (a day's posts from minute buckets only, a lower bound).
    Further back, count in full."""
    if state["all_posts"] < min(rules.min_accounts_1h, rules.velocity_min_posts_1h):
        return False
    accounts_open = alert_id(arxiv_id, "accounts_1h", moment) not in fired
    velocity_open = alert_id(arxiv_id, "velocity", moment) not in fired
    if not (accounts_open or velocity_open):
        return False
    now = moment.timestamp()
    newest = now if state["last"] is None else state["last"]
    if now <= newest - counting.MINUTE_SPAN_SECONDS + 2 * counting.HOUR:
        return True
    minutes = state["min"]
    end = int(-(-now // counting.MINUTE)) * counting.MINUTE
    posts_1h = accounts_1h = 0.0
    if len(minutes) < 60:  # fewer buckets than the hour's minutes: walk the buckets
        start = end - counting.HOUR
        for key, bucket in minutes.items():
            if start < int(key) <= end:
                posts_1h += bucket[counting.POSTS]
                accounts_1h += bucket[counting.LATEST]
    else:
        for back in range(0, counting.HOUR, counting.MINUTE):
            found = minutes.get(str(end - back))
            if found is not None:
                posts_1h += found[counting.POSTS]
                accounts_1h += found[counting.LATEST]
    if accounts_open and accounts_1h >= rules.min_accounts_1h:
        return True
    if not velocity_open or posts_1h < max(rules.velocity_min_posts_1h, rules.velocity_ratio):
        return False  # velocity is at most the hour's posts (its baseline is >= 1)
    # velocity = posts_1h / max(earlier / 23, 1) with `earlier` the 23 hours before: below
    # the ratio as soon as `earlier` exceeds this, which a steady paper reaches in a few
    # hours of buckets (the walk stops there).
    enough = 23.0 * posts_1h / (rules.velocity_ratio - 1e-6)  # velocity is rounded
    earlier = 0.0
    for back in range(counting.HOUR, 86400, counting.MINUTE):
        found = minutes.get(str(end - back))
        if found is not None:
            earlier += found[counting.POSTS]
            if earlier > enough:
                return False
    return True
