"""Which papers the count refresh re-sends as time passes: pure logic."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_counting import NOW, mention, paper_states
from trending_arxiv.core import counting
from trending_arxiv.core.refresh import RefreshSchedule

OWN_ALL = lambda _: True  # noqa: E731


def state_with_posts(*hours_ago: float) -> dict[str, Any]:
    state, entries = counting.new_paper_state(), cast(dict[str, Any], {})
    for number, hours in enumerate(hours_ago):
        counting.apply_mentions(state, [mention(str(number), hours, f"u{number}")], entries)
    counting.prune(state, NOW)
    return state


def send_due(
    schedule: RefreshSchedule, states: dict[str, Any], as_of: datetime, sent: dict[str, Any]
) -> list[str]:
    """One refresh as the worker does it: send what is due, then schedule it."""
    due = schedule.due(states, as_of, OWN_ALL)
    for arxiv_id in due:
        sent[arxiv_id] = counting.window_counts(states[arxiv_id], as_of)
        schedule.schedule(arxiv_id, states[arxiv_id], as_of)
    return due


def test_the_first_refresh_sends_every_recent_paper_the_worker_owns() -> None:
    states = {
        "recent": state_with_posts(1),
        "mine-too": state_with_posts(24 * 29),
        "quiet": state_with_posts(24 * 31),
        "standby": state_with_posts(1),
        "empty": None,
    }
    schedule = RefreshSchedule()
    mine = lambda arxiv_id: arxiv_id != "standby"  # noqa: E731
    assert sorted(schedule.due(states, NOW, mine)) == ["mine-too", "recent"]
    for arxiv_id in ("recent", "mine-too"):
        schedule.schedule(arxiv_id, cast(dict[str, Any], states[arxiv_id]), NOW)
    assert schedule.due(states, NOW + timedelta(seconds=30), mine) == []
    schedule.reset()  # a rebalance: the first refresh after it sends them all again
    assert sorted(schedule.due(states, NOW, mine)) == ["mine-too", "recent"]


def test_after_a_reset_a_paper_sent_in_its_30_days_and_now_past_them_is_sent_again() -> None:
    """The gap two fresh-clone CI runs found: sent with a rank, then a rebalance, then
    its last post passes 30 days; the fill after the reset must still send it."""
    states: dict[str, Any] = {"p": state_with_posts(24)}
    schedule, sent = RefreshSchedule(), cast(dict[str, Any], {})
    send_due(schedule, states, NOW, sent)
    assert sent["p"][0]["30d"] == 1
    schedule.reset()
    later = NOW + timedelta(days=40)
    assert send_due(schedule, states, later, sent) == ["p"]
    assert sent["p"] == counting.window_counts(states["p"], later)
    assert sent["p"][0]["30d"] == 0


def test_a_paper_is_due_once_its_post_leaves_a_window_and_once_only() -> None:
    states: dict[str, Any] = {"p": state_with_posts(0.5)}
    schedule, sent = RefreshSchedule(), cast(dict[str, Any], {})
    send_due(schedule, states, NOW, sent)
    assert send_due(schedule, states, NOW + timedelta(minutes=29), sent) == []
    assert send_due(schedule, states, NOW + timedelta(minutes=31), sent) == ["p"]
    assert sent["p"][0]["1h"] == 0 and sent["p"][0]["24h"] == 1
    assert send_due(schedule, states, NOW + timedelta(minutes=32), sent) == []


def test_updates_sent_by_the_counting_agent_reschedule_the_paper() -> None:
    states: dict[str, Any] = {"p": state_with_posts(0.5)}
    schedule, sent = RefreshSchedule(), cast(dict[str, Any], {})
    send_due(schedule, states, NOW, sent)
    # A new post 20 minutes later; the agent sends the paper twice (two batches).
    later = NOW + timedelta(minutes=20)
    counting.apply_mentions(states["p"], [mention("new", -20 / 60, "v")], {})
    schedule.note_sent("p", later)
    schedule.note_sent("p", later)
    # The old post still leaves the 1h window after 30 minutes: due once, not twice.
    assert send_due(schedule, states, NOW + timedelta(minutes=31), sent) == ["p"]
    assert sent["p"][0]["1h"] == 1
    assert send_due(schedule, states, NOW + timedelta(minutes=40), sent) == []
    assert send_due(schedule, states, NOW + timedelta(minutes=81), sent) == ["p"]
    assert sent["p"][0]["1h"] == 0


@given(
    st.lists(paper_states(), min_size=1, max_size=4),
    st.lists(st.tuples(st.floats(0.01, 24 * 10), st.booleans()), min_size=1, max_size=12),
)
def test_after_every_refresh_each_paper_sent_counts_what_it_counts_now(
    states_list: list[dict[str, Any]], steps: list[tuple[float, bool]]
) -> None:
    """Whatever the gaps between refreshes, and wherever rebalances reset the schedule,
    what was last sent of each paper equals its counts at that refresh: no paper is left
    stale, and the schedule found every change."""
    states: dict[str, Any] = {f"p{i}": state for i, state in enumerate(states_list)}
    schedule, sent = RefreshSchedule(), cast(dict[str, Any], {})
    as_of = NOW
    send_due(schedule, states, as_of, sent)
    for hours, rebalanced in steps:
        if rebalanced:
            schedule.reset()
        as_of += timedelta(hours=hours)
        send_due(schedule, states, as_of, sent)
        for arxiv_id, state in states.items():
            if arxiv_id in sent:
                assert sent[arxiv_id] == counting.window_counts(state, as_of), arxiv_id
