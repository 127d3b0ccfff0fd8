"""Windows, distinct accounts, trend score, velocity and alerts: pure logic."""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from trending_arxiv.core import buckets, counting, stored
from trending_arxiv.core.clock import StreamClock
from trending_arxiv.core.models import WINDOW_SECONDS, Mention
from trending_arxiv.core.pipeline import StagedAccounts, UnpackedSummaries

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def mention(post_id: str, hours_ago: float, author: str = "a", op: str = "add") -> Mention:
    return Mention(
        post_id=post_id,
        arxiv_id="2402.00001",
        created_at=NOW - timedelta(hours=hours_ago),
        source="x",
        kind="post",
        author_id=author,
        op=op,  # type: ignore[arg-type]
    )


def state_of(*mentions: Mention) -> dict:
    state = counting.new_paper_state()
    counting.apply_mentions(state, mentions, {})
    return state


def test_windows_count_posts_and_distinct_accounts_at_as_of() -> None:
    state = state_of(
        mention("1", 0.5, "a"),
        mention("2", 0.9, "a"),
        mention("3", 2, "b"),
        mention("4", 30, "c"),
        mention("5", 24 * 8, "d"),
        mention("6", 24 * 40, "e"),
    )
    posts, accounts = counting.window_counts(state, NOW)
    assert posts == {"1h": 2, "24h": 3, "7d": 4, "30d": 5, "all": 6}
    assert accounts == {"1h": 1, "24h": 2, "7d": 3, "30d": 4, "all": 5}


def test_events_after_as_of_are_not_in_finite_windows() -> None:
    state = state_of(mention("1", -1.0), mention("2", 0.5))
    posts, _ = counting.window_counts(state, NOW)
    assert posts["1h"] == 1 and posts["all"] == 2


def test_windows_expire_as_stream_time_moves() -> None:
    state = state_of(mention("1", 0.5))
    later = NOW + timedelta(hours=2)
    posts, _ = counting.window_counts(state, later)
    assert posts["1h"] == 0 and posts["24h"] == 1


def test_add_is_idempotent_and_remove_is_remembered() -> None:
    state, accounts = counting.new_paper_state(), cast(dict[str, Any], {})
    assert counting.apply_mentions(state, [mention("1", 1)], accounts)
    assert not counting.apply_mentions(state, [mention("1", 1)], accounts)
    assert counting.apply_mentions(state, [mention("1", 1, op="remove")], accounts)
    assert not counting.apply_mentions(state, [mention("1", 1)], accounts)  # a redelivered add
    posts, accounts = counting.window_counts(state, NOW)
    assert posts["all"] == 0 and accounts["all"] == 0


def test_account_entries_saved_packed_count_as_unpacked_ones() -> None:
    """The worker keeps account entries as JSON text; reading one gives a copy, so a
    batch's changes reach the saved store only when it saves them."""
    history = [mention("1", 3), mention("2", 2, author="b"), mention("3", 1),
               mention("1", 3, op="remove"), mention("4", 0.5)]  # fmt: skip
    plain_state, plain = counting.new_paper_state(), cast(dict[str, Any], {})
    packed_state, packed = counting.new_paper_state(), cast(dict[str, Any], {})
    for one in history:
        counting.apply_mentions(plain_state, [one], plain)
        staged, saved_before = StagedAccounts(packed), dict(packed)
        counting.apply_mentions(packed_state, [one], staged)
        assert packed == saved_before  # nothing written through before the save
        packed.update({k: stored.pack_account_entry(v) for k, v in staged.changes.items()})
    assert packed_state == plain_state
    assert all(isinstance(v, bytes) for v in packed.values())
    assert {k: stored.unpack_account_entry(v) for k, v in packed.items()} == plain
    # As Faust recovers them from the changelog (a JSON string: a str), they read alike.
    assert {k: stored.unpack_account_entry(v.decode()) for k, v in packed.items()} == plain
    entry = plain[counting.account_key("2402.00001", "x:a")]
    assert len(stored.pack_account_entry(entry)) < 160


def test_summaries_stored_packed_read_back_equal_and_as_fresh_copies() -> None:
    """The worker keeps paper summaries as JSON text; a read gives a fresh dict, so
    counting into it changes the store only when the batch stores it back."""
    state = state_of(mention("1", 30), mention("2", 2, author="b"), mention("3", 0.5))
    state["through"], state["alerts"] = [3, 17], {"burst:1": 1.0}
    table = {"2402.00001": stored.pack_summary(state), "old": state_of(mention("4", 1))}
    summaries = UnpackedSummaries(table)
    assert isinstance(table["2402.00001"], bytes) and len(table["2402.00001"]) < 600
    assert summaries["2402.00001"] == state and summaries["old"] == table["old"]
    read = summaries.get("2402.00001")
    counting.apply_mentions(read, [mention("5", 0.1)], {})
    assert summaries["2402.00001"] == state != read
    assert summaries.get("missing") is None and len(summaries) == 2
    assert counting.window_counts(summaries["2402.00001"], NOW) == counting.window_counts(
        state, NOW
    )


def keyed_buckets(state: dict) -> dict:
    """The summary as versions before session 19 stored it: buckets keyed by their end."""
    return {
        **state,
        **{
            kind: {
                str(end): [posts, latest, weight]
                for end, posts, latest, weight in zip(*state[kind], strict=True)
            }
            for kind in ("min", "hr")
        },
    }


def assert_well_formed(state: dict) -> None:
    """Each kind's columns are as long as each other, their ends strictly ascending and on
    the kind's grid."""
    for kind, step in (("min", counting.MINUTE), ("hr", counting.HOUR)):
        ends = state[kind][buckets.ENDS]
        assert len(state[kind]) == 4 and all(len(column) == len(ends) for column in state[kind])
        assert all(a < b for a, b in itertools.pairwise(ends)) and all(e % step == 0 for e in ends)


def test_a_summary_stored_with_keyed_buckets_reads_as_columns() -> None:
    """A worker of this version recovers the summaries an older one wrote to the changelog."""
    state = state_of(
        mention("1", 30, "a"), mention("2", 26, "b"), mention("3", 2, "a"), mention("4", 0.2, "c")
    )
    state["through"], state["alerts"] = [1, 7, 1], {"2402.00001:velocity:2026-03-01T11": 1.0}
    assert state["min"][buckets.ENDS] and state["hr"][buckets.ENDS]  # both kinds
    legacy = keyed_buckets(state)
    table = {"packed": json.dumps(legacy), "unpacked": legacy}
    summaries = UnpackedSummaries(table)
    assert summaries["packed"] == state and summaries["unpacked"] == state
    assert isinstance(table["unpacked"]["min"], dict)  # read, not rewritten
    # The old format, written out: one minute bucket and one hour bucket.
    old = (
        '{"all_posts":2,"all_accounts":1,"sources":{"x":2},"first":1772355600.0,'
        '"last":1772366340.0,"min":{"1772366400":[1,1,500000000]},'
        '"hr":{"1772359200":[1,0,1000000000]}}'
    )
    read = stored.unpack_summary(old)
    assert read is not None
    assert read["min"] == [[1772366400], [1], [1], [500000000]]
    assert read["hr"] == [[1772359200], [1], [0], [1000000000]]
    posts, accounts = counting.window_counts(read, NOW)
    assert posts == {"1h": 1, "24h": 2, "7d": 2, "30d": 2, "all": 2}
    assert accounts == {"1h": 1, "24h": 1, "7d": 1, "30d": 1, "all": 1}
    # Counting goes on from a recovered summary as from the one it was written from.
    more = [mention("5", 0.1, "d"), mention("1", 30, "a", op="remove")]
    for copy in (summaries["packed"], state):
        counting.apply_mentions(copy, more, {})
    assert summaries["packed"] != state  # a fresh copy each read
    recovered = stored.unpack_summary(table["packed"])
    assert recovered is not None
    entries: dict[str, Any] = {}
    counting.apply_mentions(recovered, more, entries)
    assert counting.count_update("2402.00001", recovered, NOW) == counting.count_update(
        "2402.00001", state, NOW
    )


def test_prune_keeps_all_time_counts() -> None:
    state = state_of(mention("1", 24 * 31), mention("2", 1))
    counting.prune(state, NOW)
    assert state["min"][buckets.POSTS] == [1] and state["hr"] == [[], [], [], []]  # 31d: gone
    posts, _ = counting.window_counts(state, NOW)
    assert posts["all"] == 2 and posts["30d"] == 1


def test_trend_score_decays_and_damps_one_account() -> None:
    fresh = counting.trend_score(state_of(mention("1", 0)), NOW, half_life_hours=6)
    old = counting.trend_score(state_of(mention("1", 6)), NOW, half_life_hours=6)
    assert fresh == 1.0 and abs(old - 0.5) < 1e-9
    one_account = state_of(*(mention(str(i), 0, "a") for i in range(10)))
    ten_accounts = state_of(*(mention(str(i), 0, f"u{i}") for i in range(10)))
    assert counting.trend_score(ten_accounts, NOW) == 10.0
    assert 2.9 < counting.trend_score(one_account, NOW) < 3.0


def test_velocity_compares_last_hour_to_own_baseline() -> None:
    assert counting.velocity({"1h": 10, "24h": 10, "7d": 0, "30d": 0, "all": 0}) == 10.0
    assert counting.velocity({"1h": 2, "24h": 48, "7d": 0, "30d": 0, "all": 0}) == 1.0


def test_stream_clock_only_moves_forward_and_advances_when_idle() -> None:
    ticks = iter([0.0, 10.0, 10.0, 70.0])
    clock = StreamClock(monotonic=lambda: next(ticks))
    assert clock.now() is None
    clock.observe(NOW)  # tick 0
    clock.observe(NOW - timedelta(hours=1))  # older: ignored, no tick used
    clock.observe(NOW + timedelta(seconds=5))  # tick 10
    assert clock.now() == NOW + timedelta(seconds=5)  # tick 10: idle 0
    assert clock.now() == NOW + timedelta(seconds=65)  # tick 70: idle 60


@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.floats(0, 24 * 40), st.booleans(), st.booleans()),
        max_size=80,
    )
)
def test_counts_equal_a_naive_recount(events: list[tuple[int, float, bool, bool]]) -> None:
    """Whatever the order of adds, removes and prunes, every window equals a recount."""
    state, entries = counting.new_paper_state(), cast(dict[str, Any], {})
    first: dict[str, tuple[float, str]] = {}
    removed: set[str] = set()
    for number, hours, is_remove, then_prune in events:
        pid, author = str(number), "abcde"[number % 5]  # a post has one author
        if not is_remove and pid not in first and pid not in removed:
            first[pid] = (hours, author)
        if is_remove:
            removed.add(pid)
        at = first[pid][0] if pid in first else hours
        op = "remove" if is_remove else "add"
        counting.apply_mentions(state, [mention(pid, at, author, op=op)], entries)
        if then_prune:
            counting.prune(state, NOW)
    assert_well_formed(state)
    live = {pid: v for pid, v in first.items() if pid not in removed}
    posts, accounts = counting.window_counts(state, NOW)
    assert posts["all"] == len(live)
    assert accounts["all"] == len({a for _, a in live.values()})
    for window, seconds in WINDOW_SECONDS.items():
        if seconds is not None:
            inside = [a for h, a in live.values() if h * 3600 < seconds]
            assert (posts[window], accounts[window]) == (len(inside), len(set(inside))), window


def test_state_stays_small_however_popular_the_paper() -> None:
    """30 days of a post a minute from 3k accounts: the summary is bounded, not per post."""
    state, entries = counting.new_paper_state(), cast(dict[str, Any], {})
    minutes = 30 * 24 * 60
    for k in range(minutes):
        post = mention(str(k), (minutes - k) / 60, author=f"u{k % 3000}")
        counting.apply_mentions(state, [post], entries)
        if k % 500 == 0:
            counting.prune(state, NOW)
    counting.prune(state, NOW)
    posts, accounts = counting.window_counts(state, NOW)
    # Ages run from 1 minute to 30 days; a window excludes its exact old end.
    assert posts["all"] == minutes and posts["1h"] == 59 and posts["24h"] == 1439
    assert posts["7d"] == 7 * 1440 - 1 and posts["30d"] == minutes - 1
    assert accounts["all"] == 3000 and accounts["1h"] == 59 and accounts["24h"] == 1439
    assert len(state["min"][buckets.ENDS]) <= 25 * 60 + 1
    assert len(state["hr"][buckets.ENDS]) <= 30 * 24
    assert len(json.dumps(state)) < 120_000
    assert max(len(json.dumps(entry)) for entry in entries.values()) < 1_000


@st.composite
def paper_states(draw: st.DrawFn) -> dict[str, Any]:
    """A paper's state after some adds and removes within the last 40 days, pruned as of
    NOW (minute buckets for the last 25 hours, hour buckets before)."""
    state, entries = counting.new_paper_state(), cast(dict[str, Any], {})
    events = draw(
        st.lists(st.tuples(st.integers(0, 20), st.floats(0, 24 * 40), st.booleans()), max_size=40)
    )
    seen: dict[str, float] = {}
    for number, hours, is_remove in events:
        pid = str(number)
        at = seen.setdefault(pid, hours)
        op = "remove" if is_remove else "add"
        counting.apply_mentions(state, [mention(pid, at, "abcd"[number % 4], op=op)], entries)
    counting.prune(state, NOW)
    assert_well_formed(state)
    return state


@given(paper_states(), paper_states(), st.floats(0, 24 * 60))
def test_trend_rank_orders_papers_as_trend_score_does_at_any_moment(
    first: dict[str, Any], second: dict[str, Any], hours_later: float
) -> None:
    """The rank is time-invariant: whichever paper scores higher at a later moment has the
    higher rank, and the score at any moment follows from the rank."""
    later = NOW + timedelta(hours=hours_later)
    scores = [counting.trend_score(s, later, half_life_hours=6) for s in (first, second)]
    ranks = [counting.trend_rank(s, half_life_hours=6, as_of=later) for s in (first, second)]
    for state, rank in zip((first, second), ranks, strict=True):  # the one-pass way
        same = counting.count_update("2402.00001", state, later, half_life_hours=6).trend_rank
        assert (same is None) == (rank is None)
        assert same is None or rank is None or abs(same - rank) < 1e-6
    for score, rank in zip(scores, ranks, strict=True):
        if rank is None:
            assert score == 0
        else:  # the score rounds to 6 decimals
            expected = 2 ** (rank - later.timestamp() / (6 * 3600))
            assert abs(score - expected) <= 1e-6 + 1e-9 * expected
    if abs(scores[0] - scores[1]) > 1e-5:
        low, high = sorted(range(2), key=lambda i: scores[i])
        assert (ranks[low] or -math.inf) < (ranks[high] or -math.inf)


@given(paper_states(), st.floats(-48, 24 * 35), st.floats(0.001, 59.0))
def test_counts_change_first_just_after_the_next_count_change(
    state: dict[str, Any], hours_later: float, seconds_after: float
) -> None:
    """Windows at any moment up to the predicted change equal those at `as_of`; just
    after it (within a minute: the bucket grid) they differ; with no change predicted,
    they stay as they are for the whole 30 days after."""
    as_of = NOW + timedelta(hours=hours_later)
    before = counting.window_counts(state, as_of)
    change = counting.next_count_change(state, as_of)
    if change is None:
        probes = [as_of + timedelta(days=d) for d in (0.5, 1, 7, 31)]
        assert all(counting.window_counts(state, moment) == before for moment in probes)
        return
    at = datetime.fromtimestamp(change, UTC)
    assert at >= as_of - timedelta(minutes=1)
    if at > as_of:
        middle = as_of + (at - as_of) * 0.5
        assert counting.window_counts(state, middle) == before
        assert counting.window_counts(state, at) == before
    assert counting.window_counts(state, at + timedelta(seconds=seconds_after)) != before


def test_a_quiet_paper_needs_refreshes_only_when_a_post_leaves_a_window() -> None:
    """One post 10 minutes ago: its counts next change when it leaves the 1h window, then
    the 24h, 7d and 30d windows; after that, never."""
    state = state_of(mention("1", 10 / 60))
    moments = []
    as_of: datetime = NOW
    while (change := counting.next_count_change(state, as_of)) is not None:
        moments.append(change)
        as_of = datetime.fromtimestamp(change + 1, UTC)
    posted = (NOW - timedelta(minutes=10)).timestamp()
    # The post (11:50) sits in a minute bucket ending at its (whole-minute) time. The 1h
    # and 24h windows' old end, a whole minute, passes it during the minute before W
    # after it; the 7d and 30d windows' old end, a whole hour, during the hour before the
    # whole hour after that (12:00 + W): 50 minutes before W after the post.
    expected = [3600 - 60, 86400 - 60, 7 * 86400 - 50 * 60, 30 * 86400 - 50 * 60]
    assert [m - posted for m in moments] == expected


def test_a_paper_without_posts_in_30_days_has_no_rank() -> None:
    """Its last refresh (when its post leaves the 30d window) clears its rank, so a rank
    taken with an earlier half-life cannot outrank papers that still trend."""
    state = state_of(mention("1", 10 / 60))
    assert counting.count_update("p", state, NOW).trend_rank is not None
    final = None
    as_of = NOW
    while (change := counting.next_count_change(state, as_of)) is not None:
        as_of = datetime.fromtimestamp(change + 1, UTC)
        final = counting.count_update("p", state, as_of)  # what the refresh sends then
    assert final is not None
    assert final.posts["30d"] == 0 and final.posts["all"] == 1
    assert final.trend_rank is None and final.trend_score == 0


@given(
    st.lists(st.tuples(st.integers(0, 30), st.floats(0, 24 * 40)), max_size=60),
    st.floats(0, 24 * 35),
    st.booleans(),
)
def test_window_counts_count_the_posts_within_window_bounds(
    events: list[tuple[int, float]], hours_later: float, then_prune: bool
) -> None:
    """At any moment at or after the newest post (stream time), each window holds exactly
    the posts with old end < t <= new end of `window_bounds`: the edges the mentions-index
    rankings filter by, so every view of one moment agrees with the stream's counts."""
    state, entries = counting.new_paper_state(), cast(dict[str, Any], {})
    times: dict[str, tuple[float, str]] = {}
    for number, hours in events:
        pid, author = str(number), "abcde"[number % 5]
        at = times.setdefault(pid, (hours, author))[0]
        counting.apply_mentions(state, [mention(pid, at, author)], entries)
    as_of = NOW + timedelta(hours=hours_later)
    if then_prune:
        counting.prune(state, as_of)
    posts, accounts = counting.window_counts(state, as_of)
    for window in WINDOW_SECONDS:
        start, end = counting.window_bounds(window, as_of)
        inside = [
            author
            for hours, author in times.values()
            if (start is None or (NOW - timedelta(hours=hours)).timestamp() > start)
            and (NOW - timedelta(hours=hours)).timestamp() <= end
        ]
        assert (posts[window], accounts[window]) == (len(inside), len(set(inside))), window


def _reference_count(
    state: dict, as_of: datetime, half_life_hours: float
) -> tuple[dict[str, int], dict[str, int], float, float | None]:
    """The windows and scores summed the plain way, one pass per window and per sum:
    the oracle `count_update`'s single pass must match to the bit."""
    now = as_of.timestamp()
    end_minute = counting._ceil(now, counting.MINUTE)
    rows = [row for columns in (state["min"], state["hr"]) for row in zip(*columns, strict=True)]
    in_view = [row for row in rows if row[0] <= end_minute]
    posts, accounts = {}, {}
    for window in WINDOW_SECONDS:
        start = counting.window_bounds(window, as_of)[0]
        inside = [row for row in in_view if start is None or row[0] > start]
        posts[window] = sum(row[1] for row in inside)
        accounts[window] = sum(row[2] for row in inside)
    posts["all"], accounts["all"] = state["all_posts"], state["all_accounts"]
    half_life = half_life_hours * 3600.0
    horizon = counting._ceil(now, counting.HOUR) - counting.RETENTION_SECONDS
    live = [(end, w / counting.WEIGHT_UNITS) for end, _, _, w in rows if w > 0 and end > horizon]
    scores = [w if end > now else w * math.pow(2.0, (end - now) / half_life)
              for end, w in live if end <= end_minute]  # fmt: skip
    rank = None
    if live:  # log2 of the weights decayed to the epoch, relative to the newest bucket
        newest = max(end / half_life for end, _ in live)
        total = math.fsum(w * math.pow(2.0, end / half_life - newest) for end, w in live)
        rank = round(newest + math.log2(total), 9)
    return posts, accounts, round(math.fsum(scores), 6), rank


# Minutes before as_of: any, or on a window's edge (7d and 30d old ends are whole hours).
_EDGE_AGES = [m + d for m in (0, 60, 1440, 10080, 43200) for d in (-1, 0, 1)]


@given(
    st.lists(
        st.tuples(
            st.one_of(st.integers(-120, 45 * 1440), st.sampled_from(_EDGE_AGES)),
            st.sampled_from("abcdefg"),
            st.booleans(),  # a removal of the post, too
        ),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from([0, 1, 59, -60, 1500, -2000]),  # as_of, whole minutes from NOW (an hour)
    st.sampled_from([1.0, 6.0, 24.0]),
)
def test_count_update_in_one_pass_matches_the_windows_summed_one_by_one(
    posts: list[tuple[int, str, bool]], as_of_minutes: int, half_life_hours: float
) -> None:
    # Buckets after as_of (a replay viewed earlier), past 30 days, and on every edge.
    before_now = [((ago - as_of_minutes) / 60, who, removed) for ago, who, removed in posts]
    mentions = [mention(str(i), hours, who) for i, (hours, who, _) in enumerate(before_now)]
    mentions += [
        mention(str(i), hours, who, op="remove")
        for i, (hours, who, removed) in enumerate(before_now)
        if removed
    ]
    state = state_of(*mentions)
    as_of = NOW + timedelta(minutes=as_of_minutes)
    update = counting.count_update("2402.00001", state, as_of, half_life_hours)
    posts_by_window, accounts_by_window, score, rank = _reference_count(
        state, as_of, half_life_hours
    )
    assert update.posts == posts_by_window
    assert update.accounts == accounts_by_window
    assert update.trend_score == score
    assert update.trend_rank == rank
    assert counting.window_counts(state, as_of) == (posts_by_window, accounts_by_window)
