"""Subscriptions, pure: query matching, triggers on count updates, digest schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trending_arxiv.core.models import CountUpdate
from trending_arxiv.core.subscriptions import (
    PaperQuery,
    Trigger,
    accounts_crossings,
    check_name,
    crossing_alert,
    digest_alert,
    digest_due,
    evaluate_trigger,
    phrase_matches,
    velocity_alert,
    velocity_crossings,
)

PAPER = {
    "title": "Exploring the Limits of Language Modeling",
    "abstract": "Recurrent neural networks for large scale language modeling.",
    "authors": ["Rafal Jozefowicz", "Oriol Vinyals"],
    "categories": ["cs.CL"],
}


def _update(accounts_1h: int, posts_1h: int, posts_24h: int, hour: int, minute: int = 10):
    windows = ("1h", "24h", "7d", "30d", "all")
    return CountUpdate(
        arxiv_id="1602.02410",
        as_of=datetime(2016, 2, 8, hour, minute, tzinfo=UTC),
        posts=dict(
            zip(windows, (posts_1h, posts_24h, posts_24h, posts_24h, posts_24h), strict=True)
        ),
        accounts=dict(zip(windows, (accounts_1h, 50, 50, 50, 50), strict=True)),
        trend_score=1.0,
        velocity=posts_1h / max((posts_24h - posts_1h) / 23.0, 1.0),
        first_seen=None,
        last_seen=None,
    )


def test_phrases_match_word_sequences_with_a_prefix_last_word() -> None:
    assert phrase_matches("language model", "Exploring the Limits of Language Modeling")
    assert phrase_matches("Language Models", "large language models.")
    assert not phrase_matches("language model", "a model of language")
    assert not phrase_matches("model", "remodel")
    assert not phrase_matches("   ", "anything")


def test_queries_need_every_kind_given_and_any_value_of_a_kind() -> None:
    assert PaperQuery(categories=("cs.CL",), keywords=("language model",)).matches(PAPER, "x")
    assert PaperQuery(categories=("cs.*",)).matches(PAPER, "x")
    assert PaperQuery(categories=("cs",)).matches(PAPER, "x")
    assert not PaperQuery(categories=("cs.LG",), keywords=("language model",)).matches(PAPER, "x")
    assert not PaperQuery(categories=("cs.CL",), keywords=("graph",)).matches(PAPER, "x")
    assert PaperQuery(authors=("vinyals",)).matches(PAPER, "x")
    assert PaperQuery(arxiv_ids=("1602.02410",)).matches(None, "1602.02410")
    assert not PaperQuery(arxiv_ids=("1602.02410",)).matches(PAPER, "1511.06909")
    assert not PaperQuery(keywords=("language",)).matches(None, "1602.02410")  # no metadata


def test_accounts_trigger_fires_once_per_paper_and_hour_bucket() -> None:
    trigger = Trigger(kind="accounts", min_accounts=10)
    assert evaluate_trigger("nlp", trigger, _update(9, 9, 9, 10)) is None
    first = evaluate_trigger("nlp", trigger, _update(12, 12, 12, 10))
    again = evaluate_trigger("nlp", trigger, _update(15, 15, 15, 10, minute=50))
    later = evaluate_trigger("nlp", trigger, _update(15, 15, 15, 11))
    assert first is not None and again is not None and later is not None
    assert first.alert_id == again.alert_id == "nlp:1602.02410:accounts_1h:2016-02-08T10"
    assert later.alert_id == "nlp:1602.02410:accounts_1h:2016-02-08T11"
    assert first.triggered_at == datetime(2016, 2, 8, 10, 10, tzinfo=UTC)  # event time
    # A query restricting posts supplies its own count.
    assert evaluate_trigger("nlp", trigger, _update(12, 12, 12, 10), accounts=3) is None


def test_velocity_and_top_triggers() -> None:
    velocity = Trigger(kind="velocity", velocity_ratio=5.0, velocity_min_posts_1h=5)
    assert evaluate_trigger("v", velocity, _update(6, 6, 6, 3)) is not None  # 6 vs 1/h
    assert evaluate_trigger("v", velocity, _update(6, 6, 236, 3)) is None  # 6 vs 10/h
    top = Trigger(kind="top", top=3)
    fired = evaluate_trigger("t", top, _update(1, 1, 1, 3), rank=2)
    assert fired is not None and fired.alert_id == "t:1602.02410:top3:2016-02-08"
    assert evaluate_trigger("t", top, _update(1, 1, 1, 3), rank=4) is None
    with pytest.raises(ValueError):
        Trigger(kind="accounts", window="all")


def test_digest_schedule_on_stream_time() -> None:
    t = datetime(2016, 2, 9, 7, 30, tzinfo=UTC)
    midnight = datetime(2016, 2, 9, tzinfo=UTC)
    assert digest_due("daily", None, t) == (datetime(2016, 2, 8, tzinfo=UTC), midnight)
    assert digest_due("daily", midnight, t) is None
    # A backlog of several days: one digest since the last one.
    earlier = datetime(2016, 2, 5, tzinfo=UTC)
    assert digest_due("daily", earlier, t) == (earlier, midnight)
    assert digest_due("hourly", None, t) == (datetime(2016, 2, 9, 6, tzinfo=UTC),
                                             datetime(2016, 2, 9, 7, tzinfo=UTC))  # fmt: skip
    alert = digest_alert("nlp", earlier, midnight, [{"arxiv_id": "1602.02410"}])
    assert alert.alert_id == "nlp:digest:2016-02-09T00:00:00Z" and alert.rule == "digest"


def test_names_are_safe_in_ids() -> None:
    assert check_name("nlp-digest_2.0") == "nlp-digest_2.0"
    for bad in ("", "a b", "a:b", "x" * 101, "-lead"):
        with pytest.raises(ValueError):
            check_name(bad)


def test_accounts_crossings_are_evaluated_at_every_posts_event_time() -> None:
    def at(minute: int) -> datetime:
        return datetime(2016, 2, 8, 10, 0, tzinfo=UTC) + timedelta(minutes=minute)

    posts = [(at(0), "x:a"), (at(20), "x:b"), (at(30), "x:a"), (at(50), "x:c"),  # 3 at :50
             (at(70), "x:d"),  # 11:10: a(:30), c, d in the hour; b left at 11:20 > 11:10? no
             (at(200), "x:e"), (at(230), "x:f")]  # fmt: skip
    crossed = accounts_crossings(posts, 3600, 3)
    assert crossed == [(at(50), 3), (at(70), 4)]
    # Shuffled input, same answer; `since` skips what an earlier evaluation saw.
    assert accounts_crossings(list(reversed(posts)), 3600, 3) == crossed
    assert accounts_crossings(posts, 3600, 3, since=at(50)) == [(at(70), 4)]
    # An account posting twice counts once.
    assert accounts_crossings([(at(0), "x:a"), (at(1), "x:a"), (at(2), "x:b")], 3600, 3) == []
    alert = crossing_alert("s", "1602.02410", Trigger(kind="accounts", min_accounts=3), at(50), 3)
    assert alert.alert_id == "s:1602.02410:accounts_1h:2016-02-08T10"
    assert alert.triggered_at == at(50)


def test_velocity_crossings_use_each_posts_own_hour_and_day() -> None:
    base = datetime(2016, 2, 8, 0, 0, tzinfo=UTC)
    quiet = [base + timedelta(hours=h) for h in range(0, 23, 1)]  # one post an hour
    burst = [base + timedelta(hours=23, minutes=m) for m in (1, 2, 3, 4, 5, 6)]
    crossed = velocity_crossings(quiet + burst, ratio=5.0, min_posts_1h=5)
    # At 23:05: 5 posts in (22:05, 23:05], 23 in the 23 hours before: 5x a post an hour.
    assert crossed == [(burst[4], 5, 5.0)]
    assert velocity_crossings(list(reversed(quiet + burst)), 5.0, 5) == crossed
    # Evaluated again later: a later post of the same hour, hence the same alert id.
    assert velocity_crossings(quiet + burst, 5.0, 5, since=burst[4]) == [(burst[5], 6, 6.0)]
    alert = velocity_alert("v", "1602.02410", burst[4], 6, 6.0)
    assert alert.alert_id == "v:1602.02410:velocity:2016-02-08T23"
