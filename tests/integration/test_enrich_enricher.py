"""Enrichment on the real Elasticsearch (and Kafka), arXiv faked by its recorded answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaProducer

from sinks.arxiv_client import ArxivUnavailableError
from sinks.catalog import bundled_seed_catalog_path
from sinks.elasticsearch_sink import ElasticsearchSink
from sinks.enrich import Enricher
from sinks.enrich_rules import EnrichSettings
from sinks.indices import ensure_indices
from tests.fakes.arxiv import FakeArxiv
from trending_arxiv.core.models import CountUpdate, Mention, to_utc_iso

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def fake() -> Iterator[FakeArxiv]:
    with FakeArxiv() as server:
        yield server


@pytest.fixture
def settings(namespace: str, stack_endpoints: tuple[str, str], fake: FakeArxiv) -> EnrichSettings:
    return EnrichSettings(
        namespace=namespace,
        kafka_bootstrap_servers=stack_endpoints[0],
        elasticsearch_url=stack_endpoints[1],
        arxiv_api_url=fake.api_url,
        arxiv_delay_seconds=0.0,
        arxiv_backoff_seconds=0.01,
        arxiv_max_attempts=2,
        arxiv_max_backoff_seconds=0.1,
        enrich_poll_seconds=0.2,
        catalog_path=str(bundled_seed_catalog_path()),
        sink_flush_seconds=0.2,
    )


@pytest.fixture
def es(settings: EnrichSettings) -> Elasticsearch:
    client = Elasticsearch(**settings.elasticsearch_client_kwargs())
    ensure_indices(client, settings)
    return client


def counts_only(
    es: Elasticsearch, settings: EnrichSettings, arxiv_id: str, first_seen: datetime = NOW
) -> None:
    doc = {
        "arxiv_id": arxiv_id,
        "posts": {"all": 3},
        "accounts": {"all": 2},
        "first_seen": to_utc_iso(first_seen),
        "last_seen": to_utc_iso(first_seen),
    }
    es.index(index=settings.indices.papers, id=arxiv_id, document=doc, refresh=True)


def paper(es: Elasticsearch, settings: EnrichSettings, arxiv_id: str) -> dict[str, Any]:
    source: dict[str, Any] = es.get(index=settings.indices.papers, id=arxiv_id)["_source"]
    return source


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_lookup_never_waits_for_arxiv_and_worker_fills_in(
    es: Elasticsearch, settings: EnrichSettings, fake: FakeArxiv
) -> None:
    counts_only(es, settings, "1605.08386")
    counts_only(es, settings, "2402.00001")
    mention = {"@timestamp": to_utc_iso(NOW), "arxiv_id": "1605.08386", "post_id": "p1"}
    es.index(index=settings.indices.mentions, id="p1|1605.08386", document=mention, refresh=True)
    enricher = Enricher(settings, es)

    answer = enricher(["1605.08386", "2402.00001", "1602.02410"])
    assert list(answer) == ["1602.02410"]  # the seed catalog; the rest is "unknown yet"
    assert (answer["1602.02410"] or {})["title"] == "Exploring the Limits of Language Modeling"
    assert fake.request_log == []  # the hot path never asked arXiv

    assert enricher.run_once() == 2
    assert [ids for _t, ids, _s in fake.request_log] == ["1605.08386,2402.00001"]
    found = paper(es, settings, "1605.08386")
    assert found["metadata_status"] == "found" and found["metadata_source"] == "arxiv"
    assert found["title"].startswith("Heat-bath random walks")
    assert found["posts"] == {"all": 3}  # counts untouched
    assert paper(es, settings, "2402.00001")["metadata_status"] == "not_found"
    es.indices.refresh(index=settings.indices.mentions)
    backfilled = es.get(index=settings.indices.mentions, id="p1|1605.08386")["_source"]
    assert backfilled["categories"] == found["categories"]
    assert enricher.stats.mentions_backfilled == 1

    again = enricher(["1605.08386", "2402.00001"])
    assert (again["1605.08386"] or {})["title"] == found["title"] and again["2402.00001"] is None

    restarted = Enricher(settings, es)  # a new process: answers come from the index
    assert restarted(["1605.08386", "2402.00001"]) == again
    es.indices.refresh(index=settings.indices.papers)
    assert restarted.run_once() == 0
    assert len(fake.request_log) == 1  # never the same paper twice...


def test_unknown_paper_is_looked_up_in_the_index_again_only_after_the_recheck_time(
    es: Elasticsearch, settings: EnrichSettings, fake: FakeArxiv
) -> None:
    """The sink meets an unknown paper in batch after batch: the index is asked about it
    once per `enrich_recheck_seconds`, and an answer written meanwhile by another process
    (`trending-arxiv enrich`) is found at the next check."""
    counts_only(es, settings, "2402.00003")
    clock = [1000.0]
    enricher = Enricher(settings, es, clock=lambda: clock[0])
    assert enricher(["2402.00003"]) == {}
    assert enricher.stats.recently_checked == 0 and enricher.stats.queued == 1
    described = {"metadata_status": "found", "title": "Found elsewhere"}
    es.update(index=settings.indices.papers, id="2402.00003", doc=described, refresh=True)

    clock[0] += settings.enrich_recheck_seconds - 1
    assert enricher(["2402.00003"]) == {}  # not asked again yet
    assert enricher.stats.recently_checked == 1 and enricher.stats.from_index == 0
    clock[0] += 2
    answer = enricher(["2402.00003"])
    assert answer == {"2402.00003": {"title": "Found elsewhere"}}  # metadata only, no counts
    assert enricher.stats.from_index == 1 and enricher.stats.recently_checked == 1
    assert fake.request_log == []


def test_daily_refresh_of_recent_papers_only(
    es: Elasticsearch, settings: EnrichSettings, fake: FakeArxiv
) -> None:
    counts_only(es, settings, "1605.08386")  # published 2016: never refreshed
    counts_only(es, settings, "2402.00001")  # unknown to arXiv, first seen now
    enricher = Enricher(settings, es)
    assert enricher.run_once(now=NOW) == 2  # found by the scan: no queue needed
    es.indices.refresh(index=settings.indices.papers)
    assert enricher.run_once(now=NOW + timedelta(hours=2)) == 0
    assert enricher.run_once(now=NOW + timedelta(hours=25)) == 1
    assert fake.request_log[-1][1] == "2402.00001"
    es.indices.refresh(index=settings.indices.papers)
    assert enricher.run_once(now=NOW + timedelta(days=9)) == 0  # not retried forever
    assert len(fake.request_log) == 2


def test_refresh_that_comes_back_empty_keeps_metadata(
    es: Elasticsearch, settings: EnrichSettings, fake: FakeArxiv
) -> None:
    recent = {
        "arxiv_id": "2402.00002",
        "metadata_status": "found",
        "title": "Kept title",
        "published": to_utc_iso(NOW - timedelta(days=1)),
        "enriched_at": to_utc_iso(NOW - timedelta(days=2)),
    }
    es.index(index=settings.indices.papers, id="2402.00002", document=recent, refresh=True)
    enricher = Enricher(settings, es)
    assert enricher.run_once(now=NOW) == 1
    assert fake.request_log[0][1] == "2402.00002"
    kept = paper(es, settings, "2402.00002")
    assert kept["metadata_status"] == "found" and kept["title"] == "Kept title"
    assert kept["enriched_at"] == to_utc_iso(NOW)


def test_arxiv_down_leaves_papers_for_later(
    es: Elasticsearch, settings: EnrichSettings, fake: FakeArxiv
) -> None:
    counts_only(es, settings, "2104.12255")
    fake.fail_next = 10
    enricher = Enricher(settings, es)
    with pytest.raises(ArxivUnavailableError):
        enricher.run_once()
    assert "metadata_status" not in paper(es, settings, "2104.12255")
    assert enricher.stats.arxiv_failures == 1
    fake.fail_next = 0
    assert enricher.run_once() == 1  # re-queued, so it comes first
    assert paper(es, settings, "2104.12255")["metadata_status"] == "found"


def test_sink_counts_first_metadata_later(
    es: Elasticsearch, settings: EnrichSettings, fake: FakeArxiv
) -> None:
    """Kafka -> sink -> ES with the enricher: counts land while arXiv hasn't answered."""
    fake.gate.clear()  # arXiv "hangs" until we let it answer
    at = NOW - timedelta(minutes=5)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    for arxiv_id, post in (("1605.08386", "100"), ("1602.02410", "101")):
        mention = Mention(
            post_id=post,
            arxiv_id=arxiv_id,
            created_at=at,
            source="x",
            kind="post",
            author_id="7",
            author_handle="h7",
            text="see",
        )
        update = CountUpdate(
            arxiv_id=arxiv_id,
            as_of=at,
            posts={"all": 1, "1h": 1},
            accounts={"all": 1, "1h": 1},
            trend_score=1.0,
            velocity=0.0,
            first_seen=at,
            last_seen=at,
            sources={"x": 1},
        )
        producer.send(settings.topics.mentions, mention.to_json_bytes())
        producer.send(settings.topics.counts, update.to_json_bytes())
    producer.flush()
    producer.close()

    enricher = Enricher(settings, es).start()
    sink = ElasticsearchSink(settings, es=es, metadata_lookup=enricher)
    runner = threading.Thread(target=sink.run, kwargs={"idle_exit_seconds": 120}, daemon=True)
    runner.start()
    try:

        def counted(arxiv_id: str) -> bool:
            es.indices.refresh(index=settings.indices.papers)
            found = es.options(ignore_status=404).get(index=settings.indices.papers, id=arxiv_id)
            return bool(found.get("found")) and found["_source"].get("posts", {}).get("all") == 1

        wait_for(lambda: counted("1605.08386") and counted("1602.02410"))
        waiting = paper(es, settings, "1605.08386")
        assert "metadata_status" not in waiting  # counted while arXiv is still silent
        assert paper(es, settings, "1602.02410")["title"].startswith("Exploring the Limits")
        fake.gate.set()
        wait_for(lambda: paper(es, settings, "1605.08386").get("metadata_status") == "found")

        def mention_has_categories() -> bool:
            es.indices.refresh(index=settings.indices.mentions)
            doc = es.get(index=settings.indices.mentions, id="100|1605.08386")["_source"]
            return bool(doc.get("categories"))

        wait_for(mention_has_categories)
        assert paper(es, settings, "1605.08386")["posts"]["all"] == 1
        assert len(fake.request_log) == 1
    finally:
        sink.stop_event.set()
        enricher.stop()
        runner.join(30)
