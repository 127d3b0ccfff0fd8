"""Alerts are about event time: the seed's history fires the reference's alerts however
its posts are spread over raw partitions and read in turns, behind the watermark."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from trending_arxiv.core import alerting
from trending_arxiv.core.alert_book import AlertBook
from trending_arxiv.core.alert_log import micros
from trending_arxiv.core.alerting import AlertRules
from trending_arxiv.core.clock import StreamClock
from trending_arxiv.core.ledger import Ledger, routed_post
from trending_arxiv.core.models import Alert, Mention
from trending_arxiv.core.posts import parse_line
from trending_arxiv.core.simulate import read_lines, simulate
from trending_arxiv.demo import bundled_sample_path
from trending_arxiv.kafka import partition_of

RULES = AlertRules()
T0 = datetime(2016, 2, 8, 2, 0, tzinfo=UTC)


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


def _key(alert: Alert) -> tuple[str, datetime, list[tuple[str, float]]]:
    return alert.alert_id, alert.triggered_at, sorted(alert.numbers.items())


@pytest.mark.parametrize("raw_partitions", [1, 2, 4, 7])
def test_the_seed_read_from_any_number_of_partitions_alerts_as_the_reference(
    raw_partitions: int,
) -> None:
    reference = simulate(read_lines([bundled_sample_path()]), alert_rules=RULES)
    assert "1602.02410:accounts_1h:2016-02-08T03" in {a.alert_id for a in reference.alerts}
    lanes: list[list[Mention]] = [[] for _ in range(raw_partitions)]
    for mention in _seed_mentions():
        lanes[partition_of(mention.post_id.encode(), raw_partitions)].append(mention)
    rng = random.Random(raw_partitions)
    book, found = AlertBook({}), []
    while any(lanes):
        lane = rng.choice([lane for lane in lanes if lane])
        take = rng.randint(1, 30)
        batch, lane[:] = lane[:take], lane[take:]
        by_paper: dict[str, list[Mention]] = {}
        for mention in batch:
            by_paper.setdefault(mention.arxiv_id, []).append(mention)
        # Each lane's newest moment read so far: the promise its writer sends.
        watermark = min((micros(lane[0].moment) for lane in lanes if lane), default=2**62)
        found += book.add(by_paper, watermark, RULES)
    found += book.release(2**62, RULES)
    assert sorted(map(_key, found)) == sorted(map(_key, reference.alerts))
    # Without rules the reference counts exactly as before and lists no alerts.
    plain = simulate(read_lines([bundled_sample_path()]))
    assert plain.alerts == [] and plain.posts_by_paper == reference.posts_by_paper


def test_alert_ids_name_the_utc_hour_of_their_moment() -> None:
    rng = random.Random(7)
    moments = [T0 + timedelta(seconds=rng.uniform(-1e8, 1e8)) for _ in range(3000)]
    moments += [T0, T0 - timedelta(microseconds=1), T0 + timedelta(minutes=59, seconds=59.999)]
    for moment in moments * 2:  # the second time from the labels kept
        assert alerting.hour_label(moment) == moment.strftime("%Y-%m-%dT%H")
    assert alerting.alert_id("1602.02410", "velocity", T0) == "1602.02410:velocity:2016-02-08T02"
