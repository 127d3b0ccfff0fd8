"""Raw posts in envelopes (many per Kafka record) through the real worker: the same
counts as one post per record, every bad post dead-lettered alone."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from producers.keys import key_of
from tests.hostile.corpus import fuzz_corpus
from tests.hostile.pipeline_checks import dead_letter_raw, read_topic
from tests.integration.pipeline import settings_for, start_pipeline, wait_for_counts
from trending_arxiv.core import counting
from trending_arxiv.core.documents import counts_document
from trending_arxiv.core.envelope import ENVELOPE_HEADER, ENVELOPE_NDJSON, envelopes, seal
from trending_arxiv.core.models import Mention, parse_utc
from trending_arxiv.core.pipeline import parse_and_route
from trending_arxiv.core.simulate import read_lines, simulate
from trending_arxiv.demo import bundled_sample_path

pytestmark = pytest.mark.integration


def test_envelopes_count_like_single_posts_and_dead_letter_bad_posts_alone(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    corpus = fuzz_corpus().generate(total=1500, seed=3, order_safe=True)
    lines = [*read_lines([bundled_sample_path()]), *(line.raw for line in corpus)]
    reference = simulate(lines)
    partitions = settings.topic_partitions

    def partition_of(line: bytes) -> int:
        key = key_of(line).key
        return (
            0
            if key is None
            else (murmur2(key.encode("utf-8", "surrogatepass")) & 0x7FFFFFFF) % partitions
        )

    processes = start_pipeline(namespace, kafka, es_url, tmp_path)
    try:
        producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
        records = 0
        for partition, value in envelopes(lines, partition_of, max_posts=50):
            producer.send(
                settings.topics.raw_posts,
                value=value,
                partition=partition,
                headers=[(ENVELOPE_HEADER, ENVELOPE_NDJSON)],
            )
            records += 1
        producer.flush()
        producer.close()
        assert records < len(lines) // 10

        es = Elasticsearch(es_url)
        documents = wait_for_counts(es, settings, processes, reference.posts_by_paper)
        counted = {a: d["posts"]["all"] for a, d in documents.items()}
        assert counted == reference.posts_by_paper
        for arxiv_id, state in reference.states.items():
            document = documents[arxiv_id]
            update = counting.count_update(arxiv_id, state, parse_utc(document["counts_as_of"]))
            want = counts_document(update)
            assert {field: document.get(field) for field in want} == want, arxiv_id
        es.indices.refresh(index=settings.indices.mentions)
        assert es.count(index=settings.indices.mentions)["count"] == len(reference.mention_ids)

        bad = [line for line in corpus if line.bad]
        letters = read_topic(kafka, settings.topics.dead_letter, expected=len(bad))
        assert Counter(letter["raw"] for letter in letters) == Counter(
            dead_letter_raw(line.raw) for line in bad
        )
        assert all(letter["line"] and letter["stage"] == "parse" for letter in letters)
    finally:
        processes.stop()


def test_routed_envelopes_dead_letter_a_bad_record_alone(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    """The routing topic carries envelopes (`MentionBatcher.route`): a record in one that
    the ledger cannot read is dead-lettered alone, and the rest of the envelope counts."""
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    partitions = settings.topic_partitions
    routed: dict[int, list[tuple[bytes, bytes]]] = {}  # partition -> (raw line, record)
    for line in read_lines([bundled_sample_path()]):
        for key, record in parse_and_route(line).routed:
            if record["post"]["kind"] == "post" and record["post"]["ids"]:  # no join waits
                partition = (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
                routed.setdefault(partition, []).append((line, orjson.dumps(record)))
    partition, chosen = max(routed.items(), key=lambda item: len(item[1]))
    chosen = chosen[:6]
    assert len(chosen) >= 4
    bad = b'{"post": "not an object"}'
    records = [record for _, record in chosen]
    envelope = seal([*records[:2], bad, b"{not json", *records[2:]])
    reference = simulate([line for line, _ in chosen])
    assert reference.posts_by_paper

    processes = start_pipeline(namespace, kafka, es_url, tmp_path)
    try:
        producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
        producer.send(
            settings.topics.routed_posts,
            value=envelope,
            partition=partition,
            headers=[(ENVELOPE_HEADER, ENVELOPE_NDJSON)],
        )
        producer.flush()
        producer.close()

        es = Elasticsearch(es_url)
        documents = wait_for_counts(es, settings, processes, reference.posts_by_paper)
        assert {a: d["posts"]["all"] for a, d in documents.items()} == reference.posts_by_paper
        letters = read_topic(kafka, settings.topics.dead_letter, expected=2)
        assert sorted((letter["line"], letter["stage"]) for letter in letters) == [
            (3, "ledger"),
            (4, "ledger"),
        ]
        assert {letter["raw"] for letter in letters} == {
            dead_letter_raw(bad),
            dead_letter_raw(b"{not json"),
        }
    finally:
        processes.stop()


def test_the_counting_agent_reads_the_mentions_topic_and_dead_letters_what_it_cannot_count(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    """The counting agent reads the sink's mentions topic: an envelope's good mentions
    count, a bad line is dead-lettered alone, and a mention off its paper's partition
    (the counting tables' changelog partition) is dead-lettered whole."""
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    partitions = settings.topic_partitions
    arxiv_id = "1602.02410"
    home = (murmur2(arxiv_id.encode()) & 0x7FFFFFFF) % partitions
    moment = datetime.now(UTC) - timedelta(minutes=5)
    good = [
        Mention(f"m{n}", arxiv_id, moment, "x", "post", author_id=f"a{n}", text="see")
        for n in range(3)
    ]
    stray = Mention("m9", arxiv_id, moment, "x", "post", author_id="a9")
    envelope = seal([good[0].to_json_bytes(), b'{"not": "a mention"}',
                     *(m.to_json_bytes() for m in good[1:])])  # fmt: skip

    processes = start_pipeline(namespace, kafka, es_url, tmp_path)
    try:
        producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
        producer.send(settings.topics.mentions, value=envelope, partition=home,
                      headers=[(ENVELOPE_HEADER, ENVELOPE_NDJSON)])  # fmt: skip
        producer.send(
            settings.topics.mentions, value=stray.to_json_bytes(), partition=(home + 1) % partitions
        )
        producer.flush()
        producer.close()

        es = Elasticsearch(es_url)
        documents = wait_for_counts(es, settings, processes, {arxiv_id: len(good)})
        assert documents[arxiv_id]["posts"]["all"] == len(good)
        # The sink dead-letters the bad line too (stage "sink"); the stray it indexes.
        letters = read_topic(kafka, settings.topics.dead_letter, expected=3)
        counted = sorted((letter.get("line") or 0, letter["reason"].split(":")[0])
                         for letter in letters if letter["stage"] == "count")  # fmt: skip
        assert counted == [(0, "unreadable mention"), (2, "unreadable mention")]
        stray_letter = next(letter for letter in letters
                            if letter["stage"] == "count" and not letter.get("line"))  # fmt: skip
        assert "not " + str(home) in stray_letter["reason"]
    finally:
        processes.stop()
