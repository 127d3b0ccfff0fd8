"""Alerts are about event time: however mentions are batched, the rules see the history
step by step (`alerting.count_and_alert`), as the reference simulation does."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.python_core import python_module
from trending_arxiv.core import counting
from trending_arxiv.core.alerting import AlertRules, count_and_alert
from trending_arxiv.core.clock import StreamClock
from trending_arxiv.core.ledger import Ledger, routed_post
from trending_arxiv.core.models import Alert, Mention
from trending_arxiv.core.pipeline import count_paper_with_history
from trending_arxiv.core.posts import parse_line
from trending_arxiv.core.simulate import read_lines, simulate
from trending_arxiv.demo import bundled_sample_path

RULES = AlertRules()
T0 = datetime(2016, 2, 8, 2, 0, tzinfo=UTC)


def _mention(n: int, at: datetime, paper: str = "1602.02410") -> Mention:
    return Mention(f"p{n}", paper, at, "x", "original", author_id=f"a{n}")


def _burst_then_quiet() -> list[Mention]:
    """12 accounts within 30 minutes, then one post a day later."""
    burst = [_mention(n, T0 + timedelta(minutes=2 * n)) for n in range(12)]
    return [*burst, _mention(99, T0 + timedelta(days=1))]


def test_a_burst_read_in_one_batch_alerts_in_the_hour_it_happened() -> None:
    state, accounts, fired = counting.new_paper_state(), {}, {}  # type: ignore[var-annotated]
    alerts = count_and_alert("1602.02410", state, _burst_then_quiet(), accounts, RULES, fired)
    ids = [a.alert_id for a in alerts]
    assert "1602.02410:accounts_1h:2016-02-08T02" in ids
    burst = next(a for a in alerts if a.rule == "accounts_1h")
    assert burst.triggered_at == T0 + timedelta(minutes=18)  # the 10th account's post
    assert burst.numbers["accounts_1h"] == 10
    # Counting is unchanged by how it was evaluated.
    assert state["all_posts"] == 13 and state["all_accounts"] == 13
    # Evaluating only once, at the end of the batch (what the worker did), sees nothing:
    # a day later the last hour holds one post.
    end = counting.count_update("1602.02410", state, T0 + timedelta(days=1))
    assert end.accounts["1h"] == 1


def test_batched_and_one_at_a_time_give_the_same_alerts() -> None:
    timed = _burst_then_quiet()
    one_by_one: list[Any] = []
    state, accounts, fired = counting.new_paper_state(), {}, {}  # type: ignore[var-annotated]
    for item in timed:
        one_by_one += count_and_alert("1602.02410", state, [item], accounts, RULES, fired)
    state2, accounts2, fired2 = counting.new_paper_state(), {}, {}  # type: ignore[var-annotated]
    batched = count_and_alert("1602.02410", state2, timed, accounts2, RULES, fired2)
    assert [a.alert_id for a in batched] == [a.alert_id for a in one_by_one]
    assert state == state2
    # Already fired alerts are not returned again.
    assert count_and_alert("1602.02410", state2, timed[-1:], accounts2, RULES, fired2) == []


def _seed_mentions() -> list[Mention]:
    """The seed's mentions in ledger order."""
    ledger, clock, found = Ledger({}, 3600.0), StreamClock(), []
    for line in read_lines([bundled_sample_path()]):
        for post in parse_line(line):
            if not post.arxiv_ids:
                continue
            clock.observe(post.created_at)
            assert clock.stream_time is not None
            found += ledger.apply(routed_post(post), clock.stream_time).mentions
    return found


def _by_paper(mentions: list[Mention]) -> dict[str, list[Mention]]:
    by_paper: dict[str, list[Mention]] = {}
    for mention in mentions:
        by_paper.setdefault(mention.arxiv_id, []).append(mention)
    return by_paper


def test_the_seed_in_one_batch_alerts_as_the_reference_does() -> None:
    reference = simulate(read_lines([bundled_sample_path()]), alert_rules=RULES)
    expected = sorted(a.alert_id for a in reference.alerts)
    assert "1602.02410:accounts_1h:2016-02-08T03" in expected
    mentions = _seed_mentions()
    # As the worker reads a replayed file: the raw topic's 4 partitions one after the
    # other, so each paper's mentions come as 4 runs over the same two days.
    runs = [mentions[start::4] for start in range(4)]
    for arrival in (mentions, [m for run in runs for m in run]):
        accounts: dict[str, Any] = {}
        found = []
        for paper, items in _by_paper(arrival).items():  # all in one batch
            state: dict[str, Any] = counting.new_paper_state()
            found += count_and_alert(paper, state, items, accounts, RULES, {})
            assert state["all_posts"] == reference.counts[paper].posts["all"]
        assert sorted(a.alert_id for a in found) == expected
    # Without rules the reference counts exactly as before and lists no alerts.
    plain = simulate(read_lines([bundled_sample_path()]))
    assert plain.alerts == [] and plain.posts_by_paper == reference.posts_by_paper


def _alert_key(alert: Alert) -> tuple[str, datetime, list[tuple[str, float]]]:
    return alert.alert_id, alert.triggered_at, sorted(alert.numbers.items())


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 200), st.integers(0, 2**32))
def test_the_worker_fires_the_reference_alerts_whatever_the_batches(
    largest: int, seed: int
) -> None:
    """The worker's step (`count_paper_with_history` a batch, at the batch's stream time)
    fires exactly the alerts `simulate` fires, with the same moments and numbers, in
    batches of any size: no alert for the moment a batch is counted at (stream time),
    none that a batch's later mentions of the same minute would change."""
    reference = simulate(read_lines([bundled_sample_path()]), alert_rules=RULES)
    mentions = _seed_mentions()
    rng = random.Random(seed)
    states: dict[str, Any] = {}
    accounts: dict[str, Any] = {}
    found: list[Alert] = []
    newest = mentions[0].created_at
    start = 0
    while start < len(mentions):
        batch = mentions[start : start + rng.randint(1, largest)]
        start += len(batch)
        newest = max(newest, *(m.created_at for m in batch))  # stream time
        for paper, items in _by_paper(batch).items():
            states[paper], _, alerts = count_paper_with_history(
                paper, states.get(paper), items, accounts, newest, RULES
            )
            found += alerts
    assert len(reference.alerts) > 3
    assert sorted(map(_alert_key, found)) == sorted(map(_alert_key, reference.alerts))


def test_a_paper_read_days_behind_stream_time_fires_each_alert_once() -> None:
    """Another partition read first puts stream time days ahead of a paper's posts: the
    alerts it fires are remembered all the same (by the paper's own newest post), not
    forgotten as they fire and fired again at the next batch."""
    burst = _burst_then_quiet()[:12]
    ahead = burst[-1].created_at + timedelta(days=3)  # each batch's stream time
    state: counting.PaperState | None = None
    accounts: dict[str, Any] = {}
    found: list[Alert] = []
    for item in burst:  # a batch each
        state, _, alerts = count_paper_with_history(
            "1602.02410", state, [item], accounts, ahead, RULES
        )
        found += alerts
    ids = [a.alert_id for a in found]
    assert "1602.02410:accounts_1h:2016-02-08T02" in ids
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("papers", [3, 40])  # dense papers (minute lookups) and sparse ones
def test_the_cheap_precheck_never_hides_an_alert(
    monkeypatch: pytest.MonkeyPatch, papers: int
) -> None:
    """Bursts, quiet spells, steady chatter, late posts and deletes: the same alerts
    with the precheck as with the full count at every step."""
    rnd = random.Random(14)
    mentions: list[Mention] = []
    for n in range(3000):
        paper = rnd.choice([f"2401.{k:05d}" for k in range(1, papers + 1)])
        minutes = rnd.choice([rnd.uniform(0, 3 * 1440), 600 + rnd.uniform(0, 40)])
        mentions.append(
            Mention(
                f"p{n}",
                paper,
                T0 + timedelta(minutes=minutes),
                "x",
                "post",
                author_id=f"a{rnd.randrange(400)}",
            )
        )
        if rnd.random() < 0.02:  # a delete of an earlier post
            old = rnd.choice(mentions)
            mentions.append(msgspec.structs.replace(old, op="remove"))
    rules = AlertRules(min_accounts_1h=6, velocity_ratio=3.0, velocity_min_posts_1h=4)
    # Its Python source, whose own calls can be replaced (a compiled module's cannot).
    python_alerting = python_module("alerting")

    def run() -> list[str]:
        states: dict[str, dict[str, Any]] = {}
        accounts: dict[str, Any] = {}
        fired: dict[str, dict[str, float]] = {}
        found = []
        for start in range(0, len(mentions), 97):  # batches in arrival (not time) order
            for paper, items in _by_paper(mentions[start : start + 97]).items():
                state = states.setdefault(paper, counting.new_paper_state())
                alerts = python_alerting.count_and_alert(
                    paper, state, items, accounts, rules, fired.setdefault(paper, {})
                )
                found += [a.alert_id for a in alerts]
        return found

    full_counts = []
    real_count = counting.count_update

    def counted(*args: Any, **kwargs: Any) -> Any:
        full_counts.append(args[0])
        return real_count(*args, **kwargs)

    monkeypatch.setattr(counting, "count_update", counted)
    with_precheck = run()
    # The precheck decides exactly: a step is fully counted only when it fires an alert.
    assert 0 < len(full_counts) <= len(with_precheck)
    monkeypatch.setattr(python_alerting, "_fires", lambda *args: True)
    assert with_precheck == run()
    assert len(with_precheck) > 10


def test_alert_ids_name_the_utc_hour_of_their_moment() -> None:
    from trending_arxiv.core import alerting

    rng = random.Random(7)
    moments = [T0 + timedelta(seconds=rng.uniform(-1e8, 1e8)) for _ in range(3000)]
    moments += [T0, T0 - timedelta(microseconds=1), T0 + timedelta(minutes=59, seconds=59.999)]
    for moment in moments * 2:  # the second time from the labels kept
        assert alerting.hour_label(moment) == moment.strftime("%Y-%m-%dT%H")
    assert alerting.alert_id("1602.02410", "velocity", T0) == "1602.02410:velocity:2016-02-08T02"
    # Another zone's moment: the id still names its UTC hour.
    east = T0.astimezone(timezone(timedelta(hours=5)))
    assert alerting.hour_label(east) == "2016-02-08T02"
    assert len(alerting._HOUR_LABELS) <= alerting._HOUR_LABELS_KEPT
