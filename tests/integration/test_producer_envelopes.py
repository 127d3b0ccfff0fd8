"""The replay producer writes envelopes (tests/integration/test_envelopes.py sends them by
hand): the real worker counts them exactly as `simulate()` does, a bad line inside an
envelope is dead-lettered alone, and envelopes turned off give one post per record."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from producers.keys import key_of
from producers.replay import replay
from producers.settings import ProducerSettings
from tests.fakes.kafka import delete_topic, fresh_namespace, headers_of, read_topic
from tests.hostile.corpus import fuzz_corpus
from tests.hostile.pipeline_checks import dead_letter_raw
from tests.hostile.pipeline_checks import read_topic as read_json_topic
from tests.integration.pipeline import start_pipeline, wait_for_counts
from trending_arxiv.core.envelope import ENVELOPE_HEADER, ENVELOPE_HEADERS, MAX_ENVELOPE_BYTES
from trending_arxiv.core.simulate import read_lines, simulate
from trending_arxiv.demo import bundled_sample_path

pytestmark = pytest.mark.integration


def raw_records(settings: ProducerSettings) -> int:
    """Kafka records in posts.raw (an envelope of many posts is one)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        topic = settings.topics.raw_posts
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def producer_settings(namespace: str, kafka: str, es_url: str, tmp: Path, **extra: object):
    return ProducerSettings(
        kafka_bootstrap_servers=kafka,
        elasticsearch_url=es_url,
        namespace=namespace,
        checkpoint_dir=tmp,
        **extra,
    )


def test_replayed_envelopes_count_exactly_and_bad_lines_are_dead_lettered_alone(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = producer_settings(namespace, kafka, es_url, tmp_path)
    assert settings.kafka_envelopes  # the default
    path = tmp_path / "corpus.jsonl"
    hostile = fuzz_corpus().generate(total=1500, seed=4, order_safe=True)
    path.write_bytes(
        bundled_sample_path().read_bytes().rstrip(b"\n")
        + b"\n"
        + b"".join(line.raw + b"\n" for line in hostile)
    )
    lines = list(read_lines([path]))
    reference = simulate(lines)
    assert reference.dead_letters and len(reference.posts_by_paper) > 50

    processes = start_pipeline(namespace, kafka, es_url, tmp_path)
    try:
        summary = replay([path], settings, progress=False)
        assert summary.complete and summary.rejected == 0, summary.lines()
        # Envelopes on posts.raw: far fewer records than posts, every post unmodified and
        # on its key's partition (read_topic checks), each envelope's source header exact.
        posts = read_topic(settings, expected=summary.sent)
        assert raw_records(settings) < summary.sent // 10
        assert Counter(post.value for post in posts) == Counter(
            line for line in lines if line.strip()
        )
        enveloped = [post for post in posts if post.line is not None]
        assert len(enveloped) >= len(posts) - 5  # only what cannot fit goes alone
        # Exactly these three headers on each envelope (not those of the ones before it).
        assert ENVELOPE_HEADERS == [(ENVELOPE_HEADER, b"ndjson")]
        for post in enveloped:
            assert len(post.headers) == 3, len(post.headers)
            headers = headers_of(post)
            assert headers[ENVELOPE_HEADER] == b"ndjson"
            assert headers["source"] == key_of(post.value).source.encode()
            assert headers["fetched_at"].endswith(b"Z")

        es = Elasticsearch(es_url)
        documents = wait_for_counts(es, settings, processes, reference.posts_by_paper)
        counted = {a: d["posts"]["all"] for a, d in documents.items()}
        assert counted == reference.posts_by_paper
        es.indices.refresh(index=settings.indices.mentions)
        assert es.count(index=settings.indices.mentions)["count"] == len(reference.mention_ids)

        # Each bad line is dead-lettered alone, with its line in its envelope; the rest of
        # its envelope counted (above).
        bad = [lines[number - 1] for number, _reason in reference.dead_letters]
        letters = read_json_topic(kafka, settings.topics.dead_letter, expected=len(bad))
        assert Counter(letter["raw"] for letter in letters) == Counter(map(dead_letter_raw, bad))
        in_envelopes = [
            raw for raw in bad if len(raw) < MAX_ENVELOPE_BYTES and b"\n" not in raw and raw.strip()
        ]
        assert sum(1 for letter in letters if letter["line"]) == len(in_envelopes) > 0
        processes.check_alive()
    finally:
        processes.stop()


def test_envelopes_off_give_one_post_per_record(
    stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = producer_settings(fresh_namespace(), kafka, es_url, tmp_path, kafka_envelopes=False)
    try:
        summary = replay([bundled_sample_path()], settings, progress=False)
        assert summary.complete and summary.sent > 100
        posts = read_topic(settings, expected=summary.sent)
        assert len(posts) == summary.sent == raw_records(settings)
        assert all(post.line is None and ENVELOPE_HEADER not in headers_of(post) for post in posts)
        for post in posts:
            found = key_of(post.value)
            assert (post.key.decode() if post.key else None) == found.key
            assert headers_of(post)["source"] == found.source.encode()
    finally:
        delete_topic(settings)
