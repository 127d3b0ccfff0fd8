"""Alert rules and alert ids (the rules are applied by `core.alert_log`).

An alert id names the paper, the rule and the hour (of event time) it fired in, so one
paper crossing one threshold yields one alert per hour however its mentions are
batched, and a redelivered mention yields the same id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from trending_arxiv.core import counting


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
