"""Per-paper counts over event-time windows, trend score and velocity: pure functions.

The state is split so that no write grows with a paper's popularity (it lives in
changelog-backed Faust tables, and every write is a changelog record):

- the paper's *summary* (one table value per paper, bounded in size): all-time posts,
  distinct accounts and sources, first/last event time, and time buckets of posts,
  accounts whose latest live post falls there and trend weight — per minute for the
  last 25 hours before the paper's newest post, per hour before that, none older than
  30 days. Each kind is kept as columns ordered by the buckets' ends (`Buckets`), so a
  window's sums are two bisections and a slice, not a walk over every bucket;
- one small *account entry* per (paper, account) in a second store (key
  `account_key(arxiv_id, account)`): that account's posts of the paper,
  `post id -> [event time, source, live 0/1, trend weight]`. It makes adds idempotent,
  remembers removals, and tells which bucket an account's latest post moves from.

Windows are evaluated at an explicit `as_of` (stream time), never at the wall clock, so
results are reproducible. A window of length W covers (A - W, A] where A is `as_of`
rounded up to the whole minute; for 7d and 30d the old end is taken by whole hours, for
every post alike (`window_bounds`: the mentions-index rankings use the same edges, so
every view of the same moment gives the same numbers).
Distinct accounts per window count each account once, at its latest live post (stream
time is the newest event, so that post is never after `as_of` in the stream).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from trending_arxiv.core.buckets import (
    ENDS,
    LATEST,
    POSTS,
    WEIGHT,
    Buckets,
    count_through,
    drop_first,
    find,
    find_or_make,
    new_buckets,
    posts_and_latest_of,
)
from trending_arxiv.core.models import WINDOW_SECONDS, WINDOWS, CountUpdate, Mention

RETENTION_SECONDS = WINDOW_SECONDS["30d"] or 0.0
DEFAULT_HALF_LIFE_HOURS = 6.0
MINUTE, HOUR = 60, 3600
# Minute buckets are kept this far back from a paper's newest post: past the 24h window.
MINUTE_SPAN_SECONDS = 25 * HOUR
_FINITE_WINDOW_SECONDS = [int(s) for s in WINDOW_SECONDS.values() if s is not None]


class PaperState(TypedDict):
    """A paper's counting summary, as stored in the worker's table and its changelog."""

    all_posts: int
    all_accounts: int
    sources: dict[str, int]  # live posts per network
    first: float | None  # epoch seconds of the oldest and newest live post
    last: float | None
    min: Buckets  # minute buckets, the last 25 hours
    hr: Buckets  # hour buckets, up to 30 days
    # The worker's bookkeeping: the mentions-topic position applied up to
    # ([partition, offset], `pipeline.APPLIED_THROUGH`) and the alerts fired (id -> time).
    through: NotRequired[list[int]]
    alerts: NotRequired[dict[str, float]]


# Trend weights are kept as integers in these units (1/k rounded once per post), so a
# bucket's weight is an exact sum whatever order its posts were added and withdrawn in
# (float sums of 1/k differ in the last bits with the order, and so did trend ranks).
WEIGHT_UNITS = 1_000_000_000

AccountStore = MutableMapping[str, dict[str, list[Any]]]


def account_key(arxiv_id: str, account: str) -> str:
    """Key of a (paper, account) entry; arXiv IDs never contain a space."""
    return f"{arxiv_id} {account}"


def new_paper_state() -> PaperState:
    return {
        "all_posts": 0,
        "all_accounts": 0,
        "sources": {},
        "first": None,
        "last": None,
        "min": new_buckets(),
        "hr": new_buckets(),
    }


def _ceil(moment: float, step: int) -> int:
    return -int(-moment // step) * step


def _bucket_for_new(state: PaperState, moment: float) -> tuple[Buckets, int]:
    """The bucket a new event at `moment` lands in (made if missing): its kind, index."""
    minute = _ceil(moment, MINUTE)
    minutes = state["min"]
    # An existing minute bucket takes it (it is folded into its hour later as a whole),
    # so an event is always found where `_locate` looks first.
    found = find(minutes, minute)
    if found >= 0:
        return minutes, found
    newest = moment if state["last"] is None else state["last"]
    if minute > newest - MINUTE_SPAN_SECONDS:
        return minutes, find_or_make(minutes, minute)
    hours = state["hr"]
    return hours, find_or_make(hours, _ceil(moment, HOUR))


def _locate(state: PaperState, moment: float) -> tuple[Buckets, int]:
    """The bucket already holding an event at `moment`: its kind and index (-1 if it
    was pruned)."""
    minutes = state["min"]
    found = find(minutes, _ceil(moment, MINUTE))
    if found >= 0:
        return minutes, found
    hours = state["hr"]
    return hours, find(hours, _ceil(moment, HOUR))


def _add_at(state: PaperState, moment: float, field: int, amount: int) -> None:
    """Add `amount` to `field` of the bucket holding an event at `moment`, if any."""
    buckets, index = _locate(state, moment)
    if index >= 0:
        buckets[field][index] += amount


def _latest_live(posts: dict[str, list[Any]]) -> float | None:
    times = [entry[0] for entry in posts.values() if entry[2]]
    return max(times) if times else None


def post_weight(rank: int) -> int:
    """Trend weight (in `WEIGHT_UNITS`) of an account's `rank`-th live post of a paper."""
    return round(WEIGHT_UNITS / rank)


def _reweigh(state: PaperState, posts: dict[str, list[Any]]) -> None:
    """Give the account's live posts their weights by event-time order (ties by post id):
    the k-th weighs 1/k, whatever order they arrived in; move changed weights between
    buckets."""
    live = sorted((entry[0], post_id) for post_id, entry in posts.items() if entry[2])
    for rank, (moment, post_id) in enumerate(live, start=1):
        entry = posts[post_id]
        weight = post_weight(rank)
        if entry[3] != weight:
            _add_at(state, moment, WEIGHT, weight - entry[3])
            entry[3] = weight


def _fold_minutes(state: PaperState) -> None:
    """Fold minute buckets 25 h or more before the paper's newest post into their hours.

    Done whenever the newest post's minute moves, so which buckets hold a post depends
    only on the posts, not on the order they came in (bucket ends set the trend score's
    ages). The buckets to fold are the oldest minutes: a prefix of the columns.
    """
    if state["last"] is None:
        return
    minutes = state["min"]
    folded = count_through(minutes, state["last"] - MINUTE_SPAN_SECONDS)
    if not folded:
        return
    hours = state["hr"]
    ends = minutes[ENDS]
    for index in range(folded):
        into = find_or_make(hours, _ceil(ends[index], HOUR))
        for field in (POSTS, LATEST, WEIGHT):
            hours[field][into] += minutes[field][index]
    drop_first(minutes, folded)


def apply_mentions(state: PaperState, mentions: Iterable[Mention], accounts: AccountStore) -> bool:
    """Add or withdraw mentions of one paper in place; return whether anything changed.

    Idempotent per post: the same post added twice counts once; a removal is
    remembered, so a removal that overtakes its add (or a redelivered add) leaves the
    post uncounted. Account entries are written back to `accounts` when they change.
    The outcome depends only on the set of adds and removes, not on their order or on
    how they are batched (`tests/unit/test_determinism.py`).
    """
    changed = False
    last_before = state["last"]
    for mention in mentions:
        account = mention.account
        key = account_key(mention.arxiv_id, account)
        posts = accounts.get(key) or {}
        known = posts.get(mention.post_id)
        moment = mention.created_at.timestamp()
        if mention.op == "add":
            # A post seen before (even one withdrawn since) never counts again: after a
            # crash, mentions are redelivered in order and must not resurrect a delete.
            if known is not None:
                continue
            previous_latest = _latest_live(posts)
            latest_post = previous_latest is None or moment >= previous_latest
            live_before = sum(1 for entry in posts.values() if entry[2])
            # Weighed by `_reweigh` below unless it is the account's newest post.
            weight = post_weight(live_before + 1) if latest_post else 0
            posts[mention.post_id] = [moment, mention.source, 1, weight]
            state["first"] = moment if state["first"] is None else min(state["first"], moment)
            state["last"] = moment if state["last"] is None else max(state["last"], moment)
            buckets, index = _bucket_for_new(state, moment)
            buckets[POSTS][index] += 1
            buckets[WEIGHT][index] += weight
            state["all_posts"] += 1
            state["sources"][mention.source] = state["sources"].get(mention.source, 0) + 1
            if previous_latest is None:
                state["all_accounts"] += 1
                buckets[LATEST][index] += 1
            elif moment > previous_latest:
                # Only looks a bucket up (makes none): `index` stays valid.
                _add_at(state, previous_latest, LATEST, -1)
                buckets[LATEST][index] += 1
            if not latest_post:
                _reweigh(state, posts)
        else:
            if known is None:
                posts[mention.post_id] = [moment, mention.source, 0, 0]
                accounts[key] = posts
                # As if added then withdrawn: the paper's span and sources do not depend
                # on which of the two came first.
                state["sources"].setdefault(mention.source, 0)
                state["first"] = moment if state["first"] is None else min(state["first"], moment)
                state["last"] = moment if state["last"] is None else max(state["last"], moment)
                continue
            if not known[2]:
                continue
            previous_latest = _latest_live(posts)
            known[2] = 0
            buckets, index = _locate(state, known[0])
            if index >= 0:
                buckets[POSTS][index] -= 1
                buckets[WEIGHT][index] -= known[3]
            known[3] = 0
            state["all_posts"] -= 1
            _decrement(state["sources"], known[1])
            latest = _latest_live(posts)
            if latest != previous_latest:
                assert previous_latest is not None
                _add_at(state, previous_latest, LATEST, -1)
                if latest is None:
                    state["all_accounts"] -= 1
                else:
                    _add_at(state, latest, LATEST, 1)
            _reweigh(state, posts)
        accounts[key] = posts
        changed = True
    last = state["last"]
    # Which minute ends are 25 h or more before `last` changes only with its minute.
    if last is not None and (last_before is None or last // MINUTE != last_before // MINUTE):
        _fold_minutes(state)
    return changed


def _decrement(counter: dict[str, int], key: str) -> None:
    # A source whose posts were all withdrawn stays, at 0: the sink writes counts as
    # partial updates, which merge objects (a key dropped here would linger there), and
    # the keys are those of every post seen, whichever came first, its add or removal.
    counter[key] = max(counter.get(key, 0) - 1, 0)


def prune(state: PaperState, as_of: datetime) -> None:
    """Drop buckets older than 30 days (the 30-day window's old end, as `window_counts`).

    Minute buckets are folded into hours by `apply_mentions` as the newest post moves.
    """
    horizon = _ceil(as_of.timestamp(), HOUR) - RETENTION_SECONDS
    first = state["first"]
    # Every bucket ends at or after the oldest post ever seen: nothing to drop before.
    if first is None or first > horizon:
        return
    for buckets in (state["min"], state["hr"]):
        drop_first(buckets, count_through(buckets, horizon))


def _start_step(seconds: float) -> int:
    """The grid a window's old end is taken on: minutes up to a day, hours beyond."""
    return MINUTE if seconds <= 86400 else HOUR


def window_bounds(window: str, as_of: datetime) -> tuple[int | None, int]:
    """The window's (old end, new end) in epoch seconds: it holds the events at t with
    old end < t <= new end (no old end for "all"). Every bucket end lies on the minute
    grid, so a bucket is in the window exactly when its events are."""
    now = as_of.timestamp()
    seconds = WINDOW_SECONDS[window]
    return (None if seconds is None else _window_start(seconds, now)), _ceil(now, MINUTE)


def _window_start(seconds: float, now: float) -> int:
    """The old end of a window of `seconds` at `now` (epoch s)."""
    return _ceil(now, _start_step(seconds)) - int(seconds)


# The finite windows, longest first: each one holds every bucket the ones after it hold.
_NESTED_WINDOWS = sorted(
    (name for name, seconds in WINDOW_SECONDS.items() if seconds is not None),
    key=lambda name: -(WINDOW_SECONDS[name] or 0.0),
)


class _Scan:
    """A paper's numbers at `as_of`: every window's posts and accounts (a slice of the
    columns each), the trend score and rank (a term for each bucket with weight). The
    same numbers, to the bit, as each summed on its own: float terms are summed with
    `math.fsum` (exactly rounded)."""

    def __init__(self, state: PaperState, as_of: datetime, half_life_hours: float) -> None:
        now = as_of.timestamp()
        end_minute = _ceil(now, MINUTE)
        half_life = half_life_hours * 3600.0
        horizon = _ceil(now, HOUR) - RETENTION_SECONDS  # as `prune`
        # Innermost first: each window holds the buckets of the ones before it, so each
        # bucket's numbers are summed once, into the innermost window holding it.
        inner_first = _NESTED_WINDOWS[::-1]
        starts = [_window_start(WINDOW_SECONDS[window] or 0.0, now) for window in inner_first]
        posts = [0] * len(starts)
        accounts = [0] * len(starts)
        scores: list[float] = []
        terms: list[float] = []  # the rank's, relative to the newest bucket with weight
        newest_end = _newest_weighted(state, horizon)
        newest = 0.0 if newest_end is None else newest_end / half_life
        for buckets in (state["min"], state["hr"]):
            ends = buckets[ENDS]
            # Buckets after as_of's minute count in no window (nor grow the score).
            stop = bisect.bisect_right(ends, end_minute)
            counted = stop
            total_posts = total_accounts = 0
            for index, start in enumerate(starts):
                begin = min(bisect.bisect_right(ends, start), stop)
                if begin < stop:
                    range_posts, range_accounts = posts_and_latest_of(buckets, begin, stop)
                    total_posts += range_posts
                    total_accounts += range_accounts
                    stop = begin
                posts[index] += total_posts
                accounts[index] += total_accounts
            units_column = buckets[WEIGHT]
            for index in range(bisect.bisect_right(ends, horizon), len(ends)):
                units = units_column[index]
                if units > 0:
                    end = ends[index]
                    weight = units / WEIGHT_UNITS
                    # The rank's, in the same pass as the score's (`trend_rank`).
                    terms.append(weight * math.pow(2.0, end / half_life - newest))
                    if index < counted:
                        # No growth within the current minute.
                        scores.append(
                            weight if end > now else weight * math.pow(2.0, (end - now) / half_life)
                        )
        self.posts = dict.fromkeys(WINDOWS, 0)
        self.accounts = dict.fromkeys(WINDOWS, 0)
        for index, window in enumerate(inner_first):
            self.posts[window] = posts[index]
            self.accounts[window] = accounts[index]
        self.posts["all"] = state["all_posts"]
        self.accounts["all"] = state["all_accounts"]
        self.score = round(math.fsum(scores), 6)
        self.rank = round(newest + math.log2(math.fsum(terms)), 9) if terms else None


def _newest_weighted(state: PaperState, horizon: float) -> int | None:
    """The newest bucket end after `horizon` with trend weight, if any."""
    newest: int | None = None
    for buckets in (state["min"], state["hr"]):
        ends, units = buckets[ENDS], buckets[WEIGHT]
        index = len(ends) - 1
        while index >= 0 and ends[index] > horizon:
            if units[index] > 0:
                if newest is None or ends[index] > newest:
                    newest = ends[index]
                break
            index -= 1
    return newest


def window_counts(state: PaperState, as_of: datetime) -> tuple[dict[str, int], dict[str, int]]:
    """Posts and distinct accounts per window at `as_of` (see the module docstring)."""
    scan = _Scan(state, as_of, DEFAULT_HALF_LIFE_HOURS)
    return scan.posts, scan.accounts


def trend_score(
    state: PaperState, as_of: datetime, half_life_hours: float = DEFAULT_HALF_LIFE_HOURS
) -> float:
    """Exponentially decayed post count, each account's k-th post weighted 1/k.

    Weighting by account keeps one account posting ten times from looking like ten
    people: its posts add up to 1 + 1/2 + ... + 1/10 ~ 2.9. Ages are taken at bucket
    ends (at most a minute off for the last 25 hours).
    """
    return _Scan(state, as_of, half_life_hours).score


def trend_rank(
    state: PaperState, as_of: datetime, half_life_hours: float = DEFAULT_HALF_LIFE_HOURS
) -> float | None:
    """log2 of the trend score, referenced to the Unix epoch instead of `as_of`.

    Every bucket's weight decays by the same factor as time passes, so the score at any
    moment t is 2 ** (rank - t / half-life) and papers ordered by rank are ordered by
    trend score at every moment: the rank needs no refresh as time passes, only when
    the paper's posts change or leave the 30-day retention (buckets `prune` would drop
    as of `as_of` count nothing). None for a paper without weight: with no post in 30
    days a paper has no rank, so ranks taken with another half-life do not outlive it.
    Summed relative to the newest bucket with weight (2 ** (end / half-life) itself
    overflows), exactly rounded (`math.fsum`), so it does not depend on `as_of` either.
    """
    return _Scan(state, as_of, half_life_hours).rank


def next_count_change(state: PaperState, as_of: datetime) -> float | None:
    """The moment (epoch s) after which `window_counts` may first differ from its value at
    `as_of`, if the state does not change; None if it never will.

    A window's oldest counted bucket leaves it first, once the window's old end reaches
    the bucket's end (and the first bucket after `as_of` enters once `as_of` passes it);
    with `_ceil`, the old end rounded up to `step` reaches X (a multiple of `step`) for
    every moment after X - step. Buckets that count nothing change no number.
    """
    now = as_of.timestamp()
    end_minute = _ceil(now, MINUTE)
    candidates: list[float] = []
    for buckets in (state["min"], state["hr"]):
        ends = [
            end
            for end, posts, latest in zip(
                buckets[ENDS], buckets[POSTS], buckets[LATEST], strict=True
            )
            if posts or latest
        ]
        after = bisect.bisect_right(ends, end_minute)  # ends[after:] are after `as_of`
        if after < len(ends):
            candidates.append(ends[after] - MINUTE)
        for seconds in _FINITE_WINDOW_SECONDS:
            step = _start_step(seconds)
            oldest = bisect.bisect_right(ends, _ceil(now, step) - seconds)  # first one in
            if oldest < after:
                # The old end reaches the bucket's end once ceil(now, step) does.
                candidates.append(_ceil(ends[oldest] + seconds, step) - step)
    return min(candidates) if candidates else None


def velocity(posts: dict[str, int]) -> float:
    """Posts in the last hour against the paper's own hourly rate over the prior 23 h.

    A paper with no earlier activity has a baseline of one post an hour, so a first
    burst of N posts reads as velocity N.
    """
    baseline = max((posts["24h"] - posts["1h"]) / 23.0, 1.0)
    return round(posts["1h"] / baseline, 6)


def count_update(
    arxiv_id: str,
    state: PaperState,
    as_of: datetime,
    half_life_hours: float = DEFAULT_HALF_LIFE_HOURS,
) -> CountUpdate:
    """Every window's numbers and the scores for one paper at `as_of`."""
    scan = _Scan(state, as_of, half_life_hours)
    first, last = state["first"], state["last"]
    return CountUpdate(
        arxiv_id=arxiv_id,
        as_of=as_of,
        posts=scan.posts,
        accounts=scan.accounts,
        trend_score=scan.score,
        trend_rank=scan.rank,
        velocity=velocity(scan.posts),
        first_seen=datetime.fromtimestamp(first, UTC) if first is not None else None,
        last_seen=datetime.fromtimestamp(last, UTC) if last is not None else None,
        sources=dict(state["sources"]),
    )
