"""Per-paper counts over event-time windows, trend score and velocity: pure functions.

A paper's state is a small JSON-able dict (it lives in a changelog-backed Faust table):
- `recent`: post id -> [account, event time (epoch s), source] for posts of the last
  30 days of stream time, which is all the windows below 'all' need;
- `all_posts`, `all_accounts` (account -> posts), `sources` (source -> posts): all time;
- `first`, `last`: first and last event time seen.
Windows are evaluated at an explicit `as_of` (stream time), never at the wall clock
inside the computation, so results are reproducible.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from trending_arxiv.models import WINDOW_SECONDS, WINDOWS, CountUpdate, Mention

RETENTION_SECONDS = WINDOW_SECONDS["30d"] or 0.0
DEFAULT_HALF_LIFE_HOURS = 6.0


def new_paper_state() -> dict[str, Any]:
    return {
        "recent": {},
        "all_posts": 0,
        "all_accounts": {},
        "sources": {},
        "first": None,
        "last": None,
    }


def apply_mentions(state: dict[str, Any], mentions: Iterable[Mention]) -> bool:
    """Add or withdraw mentions of one paper in place; return whether anything changed.

    Idempotent per post: the same post added twice counts once; a removal is
    remembered, so a removal that overtakes its add (or a redelivered add) leaves the
    post uncounted.
    """
    changed = False
    recent: dict[str, list[Any]] = state["recent"]
    accounts: dict[str, int] = state["all_accounts"]
    sources: dict[str, int] = state["sources"]
    seen: dict[str, list[Any]] = state.setdefault("seen", {})
    for mention in mentions:
        moment = mention.created_at.timestamp()
        known = seen.get(mention.post_id)
        if mention.op == "add":
            # A post seen before (even one withdrawn since) never counts again: after a
            # crash, mentions are redelivered in order and must not resurrect a delete.
            if known is not None:
                continue
            account = mention.account
            seen[mention.post_id] = [account, mention.source, 1]
            recent[mention.post_id] = [account, moment, mention.source]
            state["all_posts"] += 1
            accounts[account] = accounts.get(account, 0) + 1
            sources[mention.source] = sources.get(mention.source, 0) + 1
            state["first"] = moment if state["first"] is None else min(state["first"], moment)
            state["last"] = moment if state["last"] is None else max(state["last"], moment)
            changed = True
        else:
            if known is None:
                seen[mention.post_id] = [mention.account, mention.source, 0]
                continue
            if not known[2]:
                continue
            known[2] = 0
            recent.pop(mention.post_id, None)
            state["all_posts"] -= 1
            _decrement(accounts, known[0])
            _decrement(sources, known[1])
            changed = True
    return changed


def _decrement(counter: dict[str, int], key: str) -> None:
    left = counter.get(key, 0) - 1
    if left > 0:
        counter[key] = left
    else:
        counter.pop(key, None)


def prune(state: dict[str, Any], as_of: datetime) -> None:
    """Forget per-post detail older than the longest finite window (30 days)."""
    horizon = as_of.timestamp() - RETENTION_SECONDS
    recent = state["recent"]
    for post_id in [pid for pid, (_, moment, _) in recent.items() if moment < horizon]:
        del recent[post_id]


def window_counts(state: dict[str, Any], as_of: datetime) -> tuple[dict[str, int], dict[str, int]]:
    """Posts and distinct accounts per window, counting events at or before `as_of`.

    A window of length W covers (as_of - W, as_of]. Events after `as_of` (a replay
    viewed at an earlier moment) are not counted in the finite windows.
    """
    now = as_of.timestamp()
    posts = dict.fromkeys(WINDOWS, 0)
    accounts_per_window: dict[str, set[str]] = {w: set() for w in WINDOWS if w != "all"}
    finite = [(w, s) for w, s in WINDOW_SECONDS.items() if s is not None]
    for account, moment, _source in state["recent"].values():
        age = now - moment
        if age < 0:
            continue
        for window, seconds in finite:
            if age < seconds:
                posts[window] += 1
                accounts_per_window[window].add(account)
    posts["all"] = state["all_posts"]
    accounts = {w: len(s) for w, s in accounts_per_window.items()}
    accounts["all"] = len(state["all_accounts"])
    return posts, accounts


def trend_score(
    state: dict[str, Any], as_of: datetime, half_life_hours: float = DEFAULT_HALF_LIFE_HOURS
) -> float:
    """Exponentially decayed post count, each account's k-th post weighted 1/k.

    Weighting by account keeps one account posting ten times from looking like ten
    people: its posts add up to 1 + 1/2 + ... + 1/10 ~ 2.9.
    """
    now = as_of.timestamp()
    half_life = half_life_hours * 3600.0
    per_account: Counter[str] = Counter()
    score = 0.0
    # Arrival order (dicts keep it) stands in for time order: no sort on the hot path.
    for account, moment, _source in state["recent"].values():
        age = now - moment
        if age < 0:
            continue
        per_account[account] += 1
        score += (1.0 / per_account[account]) * math.pow(2.0, -age / half_life)
    return round(score, 6)


def velocity(posts: dict[str, int]) -> float:
    """Posts in the last hour against the paper's own hourly rate over the prior 23 h.

    A paper with no earlier activity has a baseline of one post an hour, so a first
    burst of N posts reads as velocity N.
    """
    baseline = max((posts["24h"] - posts["1h"]) / 23.0, 1.0)
    return round(posts["1h"] / baseline, 6)


def count_update(
    arxiv_id: str,
    state: dict[str, Any],
    as_of: datetime,
    half_life_hours: float = DEFAULT_HALF_LIFE_HOURS,
) -> CountUpdate:
    """Every window's numbers and the scores for one paper at `as_of`."""
    posts, accounts = window_counts(state, as_of)
    first, last = state["first"], state["last"]
    return CountUpdate(
        arxiv_id=arxiv_id,
        as_of=as_of,
        posts=posts,
        accounts=accounts,
        trend_score=trend_score(state, as_of, half_life_hours),
        velocity=velocity(posts),
        first_seen=datetime.fromtimestamp(first, UTC) if first is not None else None,
        last_seen=datetime.fromtimestamp(last, UTC) if last is not None else None,
        sources=dict(state["sources"]),
    )
