"""Alert rules over a paper's count update: pure, deduped by an alert id.

An alert id names the paper, the rule and the window bucket it fired in (the hour of
stream time), so one paper crossing one threshold yields one alert per bucket however
often its counts are refreshed, and a redelivered update yields the same id.
"""

from __future__ import annotations

from dataclasses import dataclass

from trending_arxiv.core.models import Alert, CountUpdate


@dataclass(frozen=True)
class AlertRules:
    """Thresholds; see `WorkerSettings` for the environment variables that set them."""

    min_accounts_1h: int = 10
    velocity_ratio: float = 5.0
    velocity_min_posts_1h: int = 5


def _bucket(update: CountUpdate) -> str:
    return update.as_of.strftime("%Y-%m-%dT%H")


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
                alert_id=f"{update.arxiv_id}:accounts_1h:{_bucket(update)}",
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
                alert_id=f"{update.arxiv_id}:velocity:{_bucket(update)}",
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
