"""Alert rules over a paper's count update: pure, deduped by an alert id.

An alert id names the paper, the rule and the window bucket it fired in (the hour of
stream time), so one paper crossing one threshold yields one alert per bucket however
often its counts are refreshed, and a redelivered update yields the same id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

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
    return f"{arxiv_id}:{rule}:{hour_label(moment)}"


# Labels of the hours seen lately: `strftime` was ~4% of the counting core's CPU, asked
# at every step of event time. Bounded: cleared when full.
_HOUR_LABELS: dict[int, str] = {}
_HOUR_LABELS_KEPT = 4096


def hour_label(moment: datetime) -> str:
    """The UTC hour of `moment` as alert ids name it: `2026-03-01T12`."""
    return _label_of_hour(int(moment.timestamp() // counting.HOUR))


def _label_of_hour(hour: int) -> str:
    """`hour_label` of the hour `hour` (whole hours since the epoch)."""
    label = _HOUR_LABELS.get(hour)
    if label is None:
        if len(_HOUR_LABELS) >= _HOUR_LABELS_KEPT:
            _HOUR_LABELS.clear()
        start = datetime.fromtimestamp(hour * counting.HOUR, UTC)
        label = _HOUR_LABELS[hour] = start.strftime("%Y-%m-%dT%H")
    return label


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


def count_and_alert(
    arxiv_id: str,
    state: PaperState,
    mentions: Iterable[Mention],
    accounts: counting.AccountStore,
    rules: AlertRules,
    fired: dict[str, float],
    half_life_hours: float = counting.DEFAULT_HALF_LIFE_HOURS,
) -> list[Alert]:
    """Apply one paper's mentions to its counting state in event-time order and return
    the new alerts they trigger, the rules evaluated after each mention, at its event
    time (as `simulate`, which is given the mentions one at a time).

    Alerts are about event time: however the mentions arrive (a replayed file lands in
    one batch; the worker reads the raw posts' partitions one after another, so a
    paper's mentions come as several runs over the same days), the rules see the
    history as it happened — a paper that went from 0 to 97 accounts over a day alerts
    in the hours it happened, not never. Alerts already in `fired` (alert id -> event
    time) are not returned again; new ones are added to it. The rules are evaluated
    only there, never at a later moment such as stream time, and never after a group
    of mentions at once: which alerts a history fires, when and with what numbers,
    then depends only on the history, not on how it was batched.

    Exact when each call's mentions are not older than the paper's newest post counted
    before (one batch, or batches in event-time order: what `simulate` and a
    one-partition replay give). A late post more than a day older than that newest post
    lands in an hour bucket, which the rules of its own past hour cannot see, and an
    account counts at its latest post only: alerts for such late history may be missed
    (never invented).
    """
    alerts: list[Alert] = []
    # A stable sort: mentions of one moment keep their order (an add before its removal).
    for mention in sorted(mentions, key=lambda m: m.created_at):
        counting.apply_mentions(state, (mention,), accounts)
        moment = mention.created_at
        if not _fires(state, moment, rules, fired, arxiv_id):
            continue
        update = counting.count_update(arxiv_id, state, moment, half_life_hours)
        for alert in evaluate(update, rules):
            if alert.alert_id not in fired:
                fired[alert.alert_id] = moment.timestamp()
                alerts.append(alert)
    return alerts


def _fires(
    state: PaperState,
    moment: datetime,
    rules: AlertRules,
    fired: dict[str, float],
    arxiv_id: str,
) -> bool:
    """Whether a rule fires a new alert at `moment`, decided without the full count
    (which takes the trend terms of every bucket): the count is then taken only for the
    alert's numbers.

    Both ids of the moment's hour already fired: nothing new. Else the hour's posts and
    accounts, exactly as `window_counts` takes them (the buckets ending in the hour: a
    slice of each kind's columns), then for velocity the 23 hours before it."""
    if state["all_posts"] < min(rules.min_accounts_1h, rules.velocity_min_posts_1h):
        return False
    stamp = moment.timestamp()
    hour = _label_of_hour(int(stamp // counting.HOUR))  # as `alert_id`
    accounts_open = f"{arxiv_id}:accounts_1h:{hour}" not in fired
    velocity_open = f"{arxiv_id}:velocity:{hour}" not in fired
    if not (accounts_open or velocity_open):
        return False
    end = int(-(-stamp // counting.MINUTE)) * counting.MINUTE
    start = end - counting.HOUR
    posts_1h, accounts_1h = counting.posts_and_accounts_between(state, start, end)
    if accounts_open and accounts_1h >= rules.min_accounts_1h:
        return True
    if not velocity_open:
        return False
    if posts_1h < max(rules.velocity_min_posts_1h, rules.velocity_ratio):
        return False  # velocity is at most the hour's posts (its baseline is >= 1)
    # The 23 hours before the hour: (end - 1 day, start].
    earlier = counting.posts_between(state, end - 86400, start)
    return _velocity_fires(posts_1h, earlier, rules)


def _velocity_fires(posts_1h: int, earlier: int, rules: AlertRules) -> bool:
    """The velocity rule on the exact hour and the exact 23 hours before it."""
    posts = {"1h": posts_1h, "24h": posts_1h + earlier}
    return counting.velocity(posts) >= rules.velocity_ratio
