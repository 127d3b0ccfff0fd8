"""Alerts behind a watermark (`core.alert_log`): the same alerts, moments and numbers
whatever order a history's mentions arrive in, as long as the watermark keeps its
promise (no mention still to come is older than it)."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from trending_arxiv.core.alert_book import AlertBook, alerts_in_event_time
from trending_arxiv.core.alert_log import (
    NOT_REMOVED,
    AlertLog,
    decided_of,
    micros,
    stored_text,
    text_key,
)
from trending_arxiv.core.alerting import AlertRules
from trending_arxiv.core.ledger import Ledger, routed_post
from trending_arxiv.core.models import Alert, Mention
from trending_arxiv.core.posts import NormalizedPost

RULES = AlertRules()
PAPER = "1602.02410"
T0 = datetime(2016, 2, 8, 2, 0, tzinfo=UTC)


def _add(n: int, at: datetime, account: str | None = None, paper: str = PAPER) -> Mention:
    return Mention(f"p{n}", paper, at, "x", "original", author_id=account or f"a{n}")


def _facts(alerts: list[Alert]) -> list[tuple[str, datetime, list[tuple[str, float]]]]:
    return sorted((a.alert_id, a.triggered_at, sorted(a.numbers.items())) for a in alerts)


def test_a_burst_alerts_at_the_tenth_account_with_the_numbers_of_that_moment() -> None:
    burst = [_add(n, T0 + timedelta(minutes=2 * n)) for n in range(12)]
    alerts = alerts_in_event_time([*burst, _add(99, T0 + timedelta(days=1))], RULES)
    accounts = [a for a in alerts if a.rule == "accounts_1h"]
    assert [a.alert_id for a in accounts] == [f"{PAPER}:accounts_1h:2016-02-08T02"]
    assert accounts[0].triggered_at == T0 + timedelta(minutes=18)
    assert accounts[0].numbers["accounts_1h"] == 10 == accounts[0].numbers["posts_1h"]
    # The first burst of 5 posts with no earlier day reads as velocity 5 (baseline 1/h).
    velocity = [a for a in alerts if a.rule == "velocity"]
    assert velocity[0].triggered_at == T0 + timedelta(minutes=8)
    assert velocity[0].numbers["velocity"] == 5.0


def test_one_account_posting_many_times_is_one_account() -> None:
    same = [_add(n, T0 + timedelta(minutes=n), account="loud") for n in range(30)]
    alerts = alerts_in_event_time(same, RULES)
    assert [a.rule for a in alerts] == ["velocity"]  # 30 posts, never 10 accounts


def test_an_account_counts_in_the_hour_of_any_of_its_posts_not_only_its_latest() -> None:
    """An account's later post must not hide its earlier one from that hour's count (the
    counting state keeps an account at its latest post only)."""
    burst = [_add(n, T0 + timedelta(minutes=n)) for n in range(10)]
    later = [_add(100 + n, T0 + timedelta(hours=5), account=f"a{n}") for n in range(10)]
    for order in (burst + later, later + burst):
        book = AlertBook({})
        for mention in order:
            assert book.add({PAPER: [mention]}, None, RULES) == []
        alerts = book.release(micros(T0 + timedelta(days=2)), RULES)
        assert f"{PAPER}:accounts_1h:2016-02-08T02" in {a.alert_id for a in alerts}


def test_a_withdrawn_post_counts_until_its_delete_only() -> None:
    posts = [_add(n, T0 + timedelta(minutes=n)) for n in range(10)]
    # p0 deleted before the 10th account posts: 9 accounts at most, no alert.
    early = Mention("p0", PAPER, T0, "x", "original", author_id="a0", op="remove",
                    known_at=T0 + timedelta(minutes=5))  # fmt: skip
    assert not [a for a in alerts_in_event_time([*posts, early], RULES) if a.rule == "accounts_1h"]
    # Deleted after it: the alert at the 10th post stands.
    late = Mention("p0", PAPER, T0, "x", "original", author_id="a0", op="remove",
                   known_at=T0 + timedelta(minutes=30))  # fmt: skip
    alerts = [a for a in alerts_in_event_time([*posts, late], RULES) if a.rule == "accounts_1h"]
    assert [a.triggered_at for a in alerts] == [T0 + timedelta(minutes=9)]


def test_the_watermark_holds_its_own_moment_back() -> None:
    posts = [_add(n, T0 + timedelta(minutes=n)) for n in range(10)]
    book = AlertBook({})
    tenth = micros(T0 + timedelta(minutes=9))
    before = book.add({PAPER: posts}, tenth, RULES)
    assert [a.rule for a in before] == ["velocity"]  # at the 5th post
    assert [a.rule for a in book.release(tenth + 1, RULES)] == ["accounts_1h"]
    assert book.release(tenth + 10**12, RULES) == []  # decided once


def test_a_late_mention_is_counted_as_late_and_seen_by_later_moments() -> None:
    log = AlertLog()
    log.add([_add(1, T0 + timedelta(hours=1))])
    log.release(PAPER, micros(T0 + timedelta(hours=2)), RULES)
    log.add([_add(2, T0)])
    assert log.late == 1
    assert text_key("p2") in log.ids
    log.add([_add(3, T0 - timedelta(days=2))])  # outside every window still to decide
    assert text_key("p3") not in log.ids and log.late == 1


def _history(draw_seed: int, papers: int, posts: int) -> list[Mention]:
    """Mentions over two days: bursts, repeat accounts and withdrawals."""
    rng = random.Random(draw_seed)
    found: list[Mention] = []
    for n in range(posts):
        paper = f"2401.{rng.randrange(papers):05d}"
        burst = T0 + timedelta(hours=rng.choice([0, 1, 5, 20, 30]))
        at = burst + timedelta(seconds=rng.randrange(0, 5400))
        account = f"a{rng.randrange(40)}"
        found.append(Mention(f"p{n}", paper, at, "x", "original", author_id=account))
        if rng.random() < 0.08:
            gone = at + timedelta(seconds=rng.randrange(0, 7200))
            found.append(Mention(f"p{n}", paper, at, "x", "original", author_id=account,
                                 op="remove", known_at=gone))  # fmt: skip
    return found


def _deliver(mentions: list[Mention], lanes: int, seed: int, restart: bool) -> list[Alert]:
    """Deliver `mentions` from `lanes` partitions, each in moment order, interleaved at
    random in random batches; release at a watermark that keeps its promise (at most
    the earliest moment still to come, lagging at random)."""
    rng = random.Random(seed)
    by_lane: list[list[Mention]] = [[] for _ in range(lanes)]
    for mention in mentions:
        by_lane[rng.randrange(lanes)].append(mention)
    for lane in by_lane:
        lane.sort(key=lambda m: m.moment)
    store: dict[str, bytes] = {}
    book, alerts = AlertBook(store), []
    while any(by_lane):
        lane = rng.choice([lane for lane in by_lane if lane])
        take = rng.randint(1, 20)
        batch, lane[:] = lane[:take], lane[take:]
        by_paper: dict[str, list[Mention]] = {}
        for mention in batch:
            by_paper.setdefault(mention.arxiv_id, []).append(mention)
        bound = min((micros(lane[0].moment) for lane in by_lane if lane), default=2**62)
        watermark = bound - rng.choice([0, 0, 1, 60_000_000, 3_600_000_000])
        alerts += book.add(by_paper, watermark, RULES)
        if restart and rng.random() < 0.2:
            book = AlertBook(store)  # a restart: the table recovered, the index rebuilt
            book.index(list(store))
        if rng.random() < 0.1:
            book.forget_stale(list(store), watermark)
    return alerts + book.release(2**62, RULES)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    lanes=st.integers(1, 5),
    papers=st.integers(1, 4),
    restart=st.booleans(),
)
def test_any_interleaving_behind_the_watermark_fires_the_reference_alerts(
    seed: int, lanes: int, papers: int, restart: bool
) -> None:
    history = _history(seed, papers, 150)
    reference = alerts_in_event_time(history, RULES)
    assert reference, "the history is meant to fire alerts"
    delivered = _deliver(history, lanes, seed + 1, restart)
    assert _facts(delivered) == _facts(reference)
    # Redelivery (at least once) changes nothing.
    assert _facts(_deliver(history + history[: len(history) // 2], lanes, seed, restart)) == (
        _facts(reference)
    )


def _post(post_id: str, kind: str, at: datetime, ids: tuple[str, ...] = (), ref: str | None = None,
          source: str = "bluesky") -> NormalizedPost:  # fmt: skip
    return NormalizedPost(
        post_id=post_id, source=source, kind=kind, author_id=f"did:{post_id}",  # type: ignore[arg-type]
        author_handle=None, created_at=at, text="", links=(), arxiv_ids=ids, ref_post_id=ref,
    )  # fmt: skip


def _ledger_history(posts: list[NormalizedPost]) -> set[tuple[str, str, str, datetime]]:
    """The mentions the ledger gives for `posts` read in this order (re-routes applied
    at once, as one partition would): (post, paper, op, moment)."""
    ledger, queue, found = Ledger({}, 3600.0), [routed_post(p) for p in posts], set()
    now = T0 + timedelta(days=3)
    while queue:
        applied = ledger.apply(queue.pop(0), now)
        queue += [record for _, record in applied.reroutes]
        found |= {(m.post_id, m.arxiv_id, m.op, m.moment) for m in applied.mentions}
    return found


def test_the_ledger_gives_the_same_history_whichever_order_a_post_its_repost_and_delete_come() -> (
    None
):
    subject = _post("at://s", "original", T0, ids=(PAPER,))
    repost = _post("at://r", "repost", T0 + timedelta(minutes=5), ref="at://s")
    deleted = _post("at://s", "delete", T0 + timedelta(minutes=30))
    histories = {
        order: _ledger_history(list(order))
        for order in itertools.permutations([subject, repost, deleted])
    }
    expected = {
        ("at://s", PAPER, "add", T0),
        ("at://s", PAPER, "remove", T0 + timedelta(minutes=30)),
        ("at://r", PAPER, "add", T0 + timedelta(minutes=5)),
    }
    for order, history in histories.items():
        assert history == expected, [p.kind for p in order]


def test_a_repost_deleted_before_its_subject_comes_is_withdrawn_as_of_its_delete() -> None:
    subject = _post("at://s", "original", T0, ids=(PAPER,))
    repost = _post("at://r", "repost", T0 + timedelta(minutes=5), ref="at://s")
    deleted = _post("at://r", "delete", T0 + timedelta(minutes=9))
    for order in itertools.permutations([subject, repost, deleted]):
        history = _ledger_history(list(order))
        assert ("at://s", PAPER, "add", T0) in history
        withdrawn = [h for h in history if h[0] == "at://r" and h[2] == "remove"]
        assert [h[3] for h in withdrawn] == [T0 + timedelta(minutes=9)], [p.kind for p in order]


def _a_log_with_everything() -> AlertLog:
    """A log with withdrawals (before and after their add), fired rules, a late mention
    and moments still to decide."""
    log = AlertLog()
    burst = [_add(n, T0 + timedelta(minutes=n), account=f"a{n % 7}") for n in range(30)]
    gone = Mention("p3", PAPER, T0, "x", "original", author_id="a3", op="remove",
                   known_at=T0 + timedelta(minutes=40))  # fmt: skip
    early = Mention("q1", PAPER, T0, "x", "original", author_id="b", op="remove",
                    known_at=T0 + timedelta(minutes=50))  # fmt: skip
    log.add([*burst, gone, early])
    log.release(PAPER, micros(T0 + timedelta(minutes=20)), RULES)
    log.add([_add(99, T0)])  # late
    return log


def test_a_log_reads_back_from_its_stored_form_as_it_was() -> None:
    log = _a_log_with_everything()
    assert log.fired and log.withdrawn and log.withdrawals and log.late and log.pending_moments
    stored = log.pack()
    again = AlertLog.unpack(stored)
    assert again == log
    assert again.pack() == stored
    text = stored_text(stored)  # the changelog keeps it as a JSON string
    assert text.isascii() and AlertLog.unpack(text) == log  # as Faust's recovery gives it
    assert log.decided is not None
    assert decided_of(text) == decided_of(stored) == log.decided
    assert AlertLog.unpack(AlertLog().pack()) == AlertLog()
    book = AlertBook({PAPER: stored})
    assert book.forget_stale([PAPER], micros(T0 + timedelta(days=5))) == 0  # still pending


def test_a_log_stored_as_json_by_an_earlier_version_reads_the_same() -> None:
    log = _a_log_with_everything()
    names = [t for n in range(100) for t in (f"p{n}", f"q{n}", f"x:a{n}")] + ["x:b"]
    texts = {text_key(t): t for t in names}
    legacy = json.dumps([  # the earlier stored form: text ids, None for "not withdrawn"
        log.decided, log.fired_hour, log.fired, log.late, log.pending_moments,
        [texts[k] for k in log.ids], [texts[k] for k in log.accounts], list(log.added),
        [None if r == NOT_REMOVED else r for r in log.removed],
        {texts[p]: [texts[a], r] for p, (a, r) in log.withdrawn.items()},
    ])  # fmt: skip
    assert AlertLog.unpack(legacy) == log
    assert decided_of(legacy) == log.decided
    book = AlertBook({PAPER: legacy})
    book.index([PAPER])
    assert book.release(2**62, RULES) == AlertLog.unpack(log.pack()).release(PAPER, 2**62, RULES)


def test_a_paper_queued_again_is_read_once_when_its_moments_come() -> None:
    reads: list[str] = []

    class Store(dict[str, bytes]):
        def get(self, key: str, default: object = None) -> object:
            reads.append(key)
            return super().get(key, default)

    book = AlertBook(Store())
    for minute in range(10):  # each batch moves the paper's earliest moment
        book.add({PAPER: [_add(minute, T0 + timedelta(minutes=minute))]}, None, RULES)
    reads.clear()
    book.release(2**62, RULES)
    assert reads == [PAPER]  # not once per batch that queued it
