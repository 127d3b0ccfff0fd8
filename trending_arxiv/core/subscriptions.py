"""Subscriptions: which papers a stored query wants, when it fires, when a digest is due.

Pure (no I/O). A subscription is a named query (categories, keywords in title and
abstract, authors, arXiv IDs; a follow list and a source restrict the *posts* counted
and are applied by the Elasticsearch side), plus either a trigger evaluated on every
count update of the stream (event time, so a replayed archive fires as it did live) or
a digest schedule. Whatever fires is an `Alert` with a deterministic id, delivered once
by the same machinery as the stream's alerts (`<ns>-alerts` index):

    <subscription>:<arxiv id>:accounts_<window>:<hour>   N distinct accounts in a window
    <subscription>:<arxiv id>:velocity:<hour>            posts in the last hour vs its rate
    <subscription>:<arxiv id>:top<K>:<day>               entered the top K of its view
    <subscription>:digest:<period end>                   the view's top N of a period
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from trending_arxiv.core.models import WINDOWS, Alert, CountUpdate, to_utc_iso

TriggerKind = Literal["accounts", "velocity", "top"]
DigestEvery = Literal["hourly", "daily"]
DIGEST_SECONDS: dict[str, int] = {"hourly": 3600, "daily": 86400}
_WORD = re.compile(r"\w+")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_name(name: str) -> str:
    """A subscription name: letters, digits, `_ . -`, at most 100 (it is part of ids)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"not a subscription name: {name!r} (letters, digits, '_', '.', '-'; max 100)"
        )
    return name


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def phrase_matches(phrase: str, text: str) -> bool:
    """Whether `text` holds the words of `phrase` in order, the last one as a prefix.

    "language model" matches "Language Modeling" and "language models" (the same rule
    as Elasticsearch's `match_phrase_prefix` on the standard analyzer).
    """
    wanted = _words(phrase)
    if not wanted:
        return False
    words = _words(text)
    *head, last = wanted
    for start in range(len(words) - len(wanted) + 1):
        if words[start : start + len(head)] == head and words[start + len(head)].startswith(last):
            return True
    return False


def category_matches(patterns: Sequence[str], categories: Sequence[str]) -> bool:
    """Any of `categories` is one of `patterns` (`cs.*` is a prefix, `cs` an archive)."""
    for pattern in patterns:
        prefix = pattern[:-1] if pattern.endswith(".*") else None
        for category in categories:
            if category == pattern or (prefix and category.startswith(prefix)):
                return True
            if "." not in pattern and category.split(".", 1)[0] == pattern:
                return True
    return False


@dataclass(frozen=True)
class PaperQuery:
    """What papers a subscription wants: every given kind must hold, any value of a kind.

    `follows` (a user whose stored follow list counts) and `source` restrict which posts
    count; they are applied where the posts are (the mentions index).
    """

    categories: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    arxiv_ids: tuple[str, ...] = ()
    follows: str | None = None
    source: str | None = None

    @property
    def restricts_posts(self) -> bool:
        return self.follows is not None or self.source is not None

    def matches(self, paper: Mapping[str, Any] | None, arxiv_id: str) -> bool:
        """Whether the paper's metadata satisfies the query (unknown metadata matches
        only a query on arXiv IDs alone)."""
        if self.arxiv_ids and arxiv_id not in self.arxiv_ids:
            return False
        if not (self.categories or self.keywords or self.authors):
            return True
        if not paper:
            return False
        if self.categories and not category_matches(
            self.categories, list(paper.get("categories") or [])
        ):
            return False
        if self.keywords:
            text = f"{paper.get('title') or ''}\n{paper.get('abstract') or ''}"
            if not any(phrase_matches(keyword, text) for keyword in self.keywords):
                return False
        if self.authors:
            names = [str(a).casefold() for a in paper.get("authors") or []]
            wanted = [a.casefold() for a in self.authors]
            if not any(w in name for w in wanted for name in names):
                return False
        return True


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    min_accounts: int = 10
    window: str = "1h"
    velocity_ratio: float = 5.0
    velocity_min_posts_1h: int = 5
    top: int = 10

    def __post_init__(self) -> None:
        if self.window not in WINDOWS or self.window == "all":
            raise ValueError(f"trigger window must be one of 1h, 24h, 7d, 30d, got {self.window}")
        if self.min_accounts < 1 or self.top < 1 or self.velocity_min_posts_1h < 0:
            raise ValueError("trigger thresholds must be positive")


def _hour(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def evaluate_trigger(
    subscription: str,
    trigger: Trigger,
    update: CountUpdate,
    accounts: int | None = None,
    rank: int | None = None,
) -> Alert | None:
    """The alert `update` fires for a subscription whose query matched the paper, judged
    on the update's own numbers (the service uses it for `top`; `accounts` and `velocity`
    go through `accounts_crossings` / `velocity_crossings`, exact at every post).

    `accounts` overrides the paper's distinct accounts in the trigger window (a query
    that restricts posts counts them itself); `rank` is the paper's rank in its view
    (1 = first) for a `top` trigger.
    """
    seen = update.accounts[trigger.window] if accounts is None else accounts
    numbers = {
        "posts_1h": float(update.posts["1h"]),
        "accounts_1h": float(update.accounts["1h"]),
        f"accounts_{trigger.window}": float(seen),
        "posts_24h": float(update.posts["24h"]),
        "velocity": update.velocity,
        "trend_score": update.trend_score,
    }
    prefix = f"{subscription}:{update.arxiv_id}"
    if trigger.kind == "accounts":
        if seen < trigger.min_accounts:
            return None
        rule = f"accounts_{trigger.window}"
        alert_id = f"{prefix}:{rule}:{_hour(update.as_of)}"
        reason = (
            f"{seen} distinct accounts posted about {update.arxiv_id} within "
            f"{trigger.window} (threshold {trigger.min_accounts})"
        )
    elif trigger.kind == "velocity":
        posts_1h = update.posts["1h"]
        if posts_1h < trigger.velocity_min_posts_1h or update.velocity < trigger.velocity_ratio:
            return None
        rule = "velocity"
        alert_id = f"{prefix}:{rule}:{_hour(update.as_of)}"
        reason = (
            f"{update.arxiv_id} got {posts_1h} posts in the last hour, "
            f"{update.velocity:.1f}x its hourly rate over the previous day"
        )
    else:
        if rank is None or rank > trigger.top:
            return None
        numbers["rank"] = float(rank)
        rule = f"top{trigger.top}"
        alert_id = f"{prefix}:{rule}:{update.as_of.astimezone(UTC).strftime('%Y-%m-%d')}"
        reason = f"{update.arxiv_id} is #{rank} of its view (top {trigger.top})"
    return Alert(
        alert_id=alert_id,
        arxiv_id=update.arxiv_id,
        rule=rule,
        reason=f"{subscription}: {reason}",
        triggered_at=update.as_of,
        numbers=numbers,
    )


def accounts_crossings(
    posts: Sequence[tuple[datetime, str]],
    window_seconds: float,
    min_accounts: int,
    since: datetime | None = None,
) -> list[tuple[datetime, int]]:
    """Per hour bucket, the first post (after `since`) at which the paper had at least
    `min_accounts` distinct accounts within the window ending there: `(t - W, t]`.

    `posts` are (event time, account) of the paper's posts the query counts, any order,
    reaching back at least one window before `since`. Evaluated at every post's own
    event time, the answer does not depend on how the stream batched the posts: a
    replay fires the same buckets as the live stream did.
    """
    ordered = sorted(posts)
    latest: dict[str, datetime] = {}
    crossings: dict[str, tuple[datetime, int]] = {}
    start = 0
    for moment, account in ordered:
        latest[account] = moment
        horizon = moment - timedelta(seconds=window_seconds)
        while ordered[start][0] <= horizon:
            old_moment, old_account = ordered[start]
            if latest.get(old_account) == old_moment:
                del latest[old_account]
            start += 1
        if since is not None and moment <= since:
            continue
        bucket = _hour(moment)
        if len(latest) >= min_accounts and bucket not in crossings:
            crossings[bucket] = (moment, len(latest))
    return list(crossings.values())


def velocity_crossings(
    moments: Sequence[datetime], ratio: float, min_posts_1h: int, since: datetime | None = None
) -> list[tuple[datetime, int, float]]:
    """Per hour bucket, the first post (after `since`) at which the paper's posts in the
    hour up to it reached `min_posts_1h` and `ratio` times its hourly rate over the 23
    hours before (at least one post an hour: `counting.velocity`'s rule, at every post's
    own event time). `moments` must reach back 24 hours before `since`."""
    ordered = sorted(moments)
    crossings: dict[str, tuple[datetime, int, float]] = {}
    for i, moment in enumerate(ordered):
        if since is not None and moment <= since:
            continue
        hour_ago, day_ago = moment - timedelta(hours=1), moment - timedelta(hours=24)
        hour_start = bisect.bisect_right(ordered, hour_ago, 0, i + 1)
        posts_1h = i + 1 - hour_start
        before = hour_start - bisect.bisect_right(ordered, day_ago, 0, hour_start)
        velocity = round(posts_1h / max(before / 23.0, 1.0), 6)
        bucket = _hour(moment)
        if posts_1h >= min_posts_1h and velocity >= ratio and bucket not in crossings:
            crossings[bucket] = (moment, posts_1h, velocity)
    return list(crossings.values())


def velocity_alert(
    subscription: str, arxiv_id: str, moment: datetime, posts_1h: int, velocity: float
) -> Alert:
    """The alert of a `velocity` trigger crossed at `moment` (see `velocity_crossings`)."""
    return Alert(
        alert_id=f"{subscription}:{arxiv_id}:velocity:{_hour(moment)}",
        arxiv_id=arxiv_id,
        rule="velocity",
        reason=(
            f"{subscription}: {arxiv_id} got {posts_1h} posts in the last hour, "
            f"{velocity:.1f}x its hourly rate over the previous day"
        ),
        triggered_at=moment,
        numbers={"posts_1h": float(posts_1h), "velocity": velocity},
    )


def crossing_alert(
    subscription: str, arxiv_id: str, trigger: Trigger, moment: datetime, accounts: int
) -> Alert:
    """The alert of an `accounts` trigger crossed at `moment` (see `accounts_crossings`)."""
    rule = f"accounts_{trigger.window}"
    return Alert(
        alert_id=f"{subscription}:{arxiv_id}:{rule}:{_hour(moment)}",
        arxiv_id=arxiv_id,
        rule=rule,
        reason=(
            f"{subscription}: {accounts} distinct accounts posted about {arxiv_id} within "
            f"{trigger.window} (threshold {trigger.min_accounts})"
        ),
        triggered_at=moment,
        numbers={f"accounts_{trigger.window}": float(accounts)},
    )


def period_end(moment: datetime, every: DigestEvery) -> datetime:
    """The last digest boundary at or before `moment` (UTC hours or midnights)."""
    seconds = DIGEST_SECONDS[every]
    start = int(moment.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(start, UTC)


def digest_due(
    every: DigestEvery, last_end: datetime | None, stream_time: datetime
) -> tuple[datetime, datetime] | None:
    """(start, end] of the digest due at `stream_time`, or None.

    A digest covers the time since the previous one (its first one, a single period).
    When several boundaries passed since the last digest (a backlog), one digest covers
    them all: a subscriber gets one message, not one per missed period.
    """
    end = period_end(stream_time, every)
    if last_end is not None and end <= last_end:
        return None
    start = last_end if last_end is not None else end - timedelta(seconds=DIGEST_SECONDS[every])
    return start, end


def digest_id(subscription: str, end: datetime) -> str:
    return f"{subscription}:digest:{to_utc_iso(end)}"


def digest_alert(
    subscription: str, start: datetime, end: datetime, papers: Sequence[Mapping[str, Any]]
) -> Alert:
    """A digest as an alert record (`rule="digest"`); the papers travel beside it."""
    return Alert(
        alert_id=digest_id(subscription, end),
        arxiv_id=str(papers[0]["arxiv_id"]) if papers else "",
        rule="digest",
        reason=(
            f"{subscription}: the top {len(papers)} papers from "
            f"{to_utc_iso(start)} to {to_utc_iso(end)}"
        ),
        triggered_at=end,
        numbers={"papers": float(len(papers)), "start": start.timestamp()},
    )
