"""ElasticsearchSink.write on the real Elasticsearch: every operation acknowledged, a
rejected one dead-lettered with its document, a stop heard while Elasticsearch is down."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord

from sinks.elasticsearch_sink import ElasticsearchSink
from sinks.indices import ensure_indices
from trending_arxiv.core.envelope import ENVELOPE_HEADERS, seal
from trending_arxiv.core.models import CountUpdate, Mention
from trending_arxiv.retry import Stopped
from trending_arxiv.settings import SinkSettings

pytestmark = pytest.mark.integration


def _settings(stack_endpoints: tuple[str, str], namespace: str) -> SinkSettings:
    kafka, es_url = stack_endpoints
    return SinkSettings(
        kafka_bootstrap_servers=kafka, elasticsearch_url=es_url, namespace=namespace
    )


def _first_dead_letter(settings: SinkSettings) -> dict[str, Any]:
    """The first record of the namespace's dead-letter topic."""
    consumer = KafkaConsumer(
        settings.topics.dead_letter,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=20_000,
    )
    try:
        letter: dict[str, Any] = json.loads(next(iter(consumer)).value)
    finally:
        consumer.close()
    return letter


def test_operations_are_written_and_a_rejected_one_is_dead_lettered(
    stack_endpoints: tuple[str, str], namespace: str
) -> None:
    settings = _settings(stack_endpoints, namespace)
    es = Elasticsearch(settings.elasticsearch_url)
    ensure_indices(es, settings)
    sink = ElasticsearchSink(settings, es=es, metadata_lookup=lambda ids: {})
    papers, mentions = settings.indices.papers, settings.indices.mentions
    bad = {"@timestamp": "not a date", "arxiv_id": "2401.00002"}
    operations = [
        ({"index": {"_index": mentions, "_id": "1|2401.00001"}},
         {"@timestamp": "2026-01-01T00:00:00Z", "arxiv_id": "2401.00001"}),
        ({"index": {"_index": mentions, "_id": "2|2401.00002"}}, bad),
        # A deleted post whose mention was never indexed: nothing to do, not an error.
        ({"delete": {"_index": mentions, "_id": "3|2401.00001"}}, None),
        # Two partial updates of one paper in one batch (metadata, then counts).
        ({"update": {"_index": papers, "_id": "2401.00001"}},
         {"doc": {"arxiv_id": "2401.00001", "title": "A title"}, "doc_as_upsert": True}),
        ({"update": {"_index": papers, "_id": "2401.00001"}},
         {"doc": {"arxiv_id": "2401.00001", "posts": {"all": 3}}, "doc_as_upsert": True}),
    ]  # fmt: skip
    sink.write(operations)

    assert (sink.stats.mentions_indexed, sink.stats.mentions_deleted) == (1, 1)
    assert (sink.stats.paper_updates, sink.stats.dead_letters) == (2, 1)
    paper = es.get(index=papers, id="2401.00001")["_source"]
    assert paper["title"] == "A title" and paper["posts"] == {"all": 3}
    assert es.exists(index=mentions, id="1|2401.00001")
    assert not es.exists(index=mentions, id="2|2401.00002")

    letter = _first_dead_letter(settings)
    assert letter["stage"] == "sink"
    assert letter["reason"].startswith("Elasticsearch rejected index (400)")
    assert "@timestamp" in letter["reason"]  # Elasticsearch's own error, read back
    assert json.loads(letter["raw"])["doc"] == bad


def test_a_mention_envelope_is_indexed_and_its_bad_line_dead_lettered_alone(
    stack_endpoints: tuple[str, str], namespace: str
) -> None:
    """The worker sends the sink's mentions in envelopes: each good line becomes an
    operation, a bad one a dead letter naming its line, and single records still work."""
    settings = _settings(stack_endpoints, namespace)
    es = Elasticsearch(settings.elasticsearch_url)
    sink = ElasticsearchSink(settings, es=es, metadata_lookup=lambda ids: {})
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    first, second, third = (
        Mention(f"p{n}", "2401.00001", moment, "x", "post", op=op)
        for n, op in ((1, "add"), (2, "add"), (3, "remove"))
    )
    topic = settings.topics.mentions

    def record(offset: int, value: bytes, headers: list[tuple[str, bytes]]) -> ConsumerRecord:
        return ConsumerRecord(topic, 0, None, offset, 0, 0, None, value, headers, None,
                              -1, len(value), -1)  # fmt: skip

    envelope = seal([first.to_json_bytes(), b'{"not": "a mention"}', second.to_json_bytes()])
    operations = sink.build_operations(
        [record(0, envelope, ENVELOPE_HEADERS), record(1, third.to_json_bytes(), [])]
    )

    assert [next(iter(action.values()))["_id"] for action, _ in operations] == [
        first.document_id, second.document_id, third.document_id
    ]  # fmt: skip
    assert [next(iter(action)) for action, _ in operations] == ["index", "index", "delete"]
    assert sink.stats.dead_letters == 1
    letter = _first_dead_letter(settings)
    assert (letter["stage"], letter["line"], letter["offset"]) == ("sink", 2, 0)
    assert letter["reason"].startswith("unreadable mention")


def test_the_last_count_update_of_a_paper_in_a_batch_wins(
    stack_endpoints: tuple[str, str], namespace: str
) -> None:
    """Two workers' stream times differ: after a rebalance the previous owner's last
    update (fewer posts) can carry a later `as_of` than the new owner's. The partition's
    order decides, as it does across batches."""
    settings = _settings(stack_endpoints, namespace)
    sink = ElasticsearchSink(
        settings, es=Elasticsearch(settings.elasticsearch_url), metadata_lookup=lambda ids: {}
    )
    moment = datetime(2026, 1, 1, tzinfo=UTC)

    def update(posts: int, minutes: int) -> bytes:
        counts = {"1h": 0, "24h": posts, "7d": posts, "30d": posts, "all": posts}
        return CountUpdate(
            arxiv_id="2401.00001", as_of=moment + timedelta(minutes=minutes),
            posts=counts, accounts=counts, trend_score=1.0, trend_rank=1.0, velocity=0.0,
            first_seen=moment, last_seen=moment,
        ).to_json_bytes()  # fmt: skip

    topic = settings.topics.counts
    records = [
        ConsumerRecord(topic, 0, None, offset, 0, 0, None, value, [], None, -1, len(value), -1)
        for offset, value in enumerate([update(123, 10), update(142, 5)])
    ]
    operations = sink.build_operations(records)
    counted = [body["doc"]["posts"]["all"] for _, body in operations if "posts" in body["doc"]]
    assert counted == [142]


def test_a_stop_is_heard_while_elasticsearch_is_down(
    stack_endpoints: tuple[str, str], namespace: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens there
    settings = _settings(stack_endpoints, namespace)
    sink = ElasticsearchSink(settings, es=Elasticsearch(dead), metadata_lookup=lambda ids: {})
    operations: list[tuple[dict, Any]] = [
        ({"index": {"_index": settings.indices.mentions, "_id": "1|2401.00001"}}, {})
    ]
    threading.Timer(3.0, sink.request_stop).start()
    began = time.monotonic()
    with pytest.raises(Stopped):
        sink.write(operations)
    assert time.monotonic() - began < 15
    assert sink.stats.retries >= 2  # it kept retrying until asked to stop
