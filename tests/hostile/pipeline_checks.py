"""What the hostile-input and fault tests read back from Kafka and Elasticsearch."""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError
from kafka import KafkaConsumer

from trending_arxiv.core.models import DeadLetter
from trending_arxiv.core.simulate import SimulationResult
from trending_arxiv.settings import CommonSettings


def es_state(es: Elasticsearch, settings: CommonSettings) -> tuple[dict[str, Any], int]:
    """({paper: (posts.all, accounts.all)}, number of mention documents) as ES has them."""
    indices = settings.indices
    es.indices.refresh(index=[indices.papers, indices.mentions])
    hits = es.search(
        index=indices.papers,
        query={"range": {"posts.all": {"gt": 0}}},
        source_includes=["posts.all", "accounts.all"],
        size=10_000,
    )["hits"]["hits"]
    papers = {
        h["_id"]: (h["_source"]["posts"]["all"], h["_source"]["accounts"]["all"]) for h in hits
    }
    return papers, es.count(index=indices.mentions)["count"]


def expected_state(reference: SimulationResult) -> tuple[dict[str, Any], int]:
    papers = {
        arxiv_id: (update.posts["all"], update.accounts["all"])
        for arxiv_id, update in reference.counts.items()
        if update.posts["all"] > 0
    }
    return papers, len(reference.mention_ids)


def wait_for_counts(
    settings: CommonSettings,
    reference: SimulationResult,
    timeout: float,
    alive: Any = None,
) -> tuple[dict[str, Any], int]:
    """Poll ES until it holds exactly the reference (or time out); returns the last state.

    `alive` (a callable) is called on every poll so that a dead process fails fast.
    """
    es = Elasticsearch(**settings.elasticsearch_client_kwargs())
    want = expected_state(reference)
    got: tuple[dict[str, Any], int] = ({}, 0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        with contextlib.suppress(NotFoundError):  # indices not created yet
            got = es_state(es, settings)
        if got == want:
            break
        time.sleep(1.0)
    return got


def describe_difference(got: tuple[dict[str, Any], int], want: tuple[dict[str, Any], int]) -> str:
    papers, mentions = got
    want_papers, want_mentions = want
    wrong = {
        k: (papers.get(k), want_papers.get(k))
        for k in set(papers) | set(want_papers)
        if papers.get(k) != want_papers.get(k)
    }
    sample = dict(list(wrong.items())[:10])
    return (
        f"mentions {mentions} (want {want_mentions}); {len(wrong)} papers differ "
        f"(got, want): {sample}; ES has {sum(p for p, _ in papers.values())} posts counted, "
        f"reference {sum(p for p, _ in want_papers.values())}"
    )


def read_topic(kafka: str, topic: str, expected: int, timeout: float = 60.0) -> list[dict]:
    """Every JSON record of `topic` (waits for `expected`, then reads on until idle)."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            found += [json.loads(record.value) for record in consumer]
            if len(found) >= expected:
                found += [json.loads(record.value) for record in consumer]
                break
    finally:
        consumer.close()
    return found


def dead_letter_raw(raw: bytes) -> str:
    """The `raw` field a dead letter of these bytes carries."""
    return DeadLetter.from_raw_bytes("parse", "", raw).raw


def letters_by_raw(letters: list[dict]) -> Counter[str]:
    return Counter(letter["raw"] for letter in letters)


def logs_of(directory: Path) -> dict[str, str]:
    """Every *.log below `directory`, decoded leniently."""
    return {
        str(path): path.read_bytes().decode("utf-8", errors="replace")
        for path in sorted(directory.rglob("*.log"))
    }
