"""Helpers for tests that check what producers wrote to the real Kafka."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer

from producers.keys import key_of
from trending_arxiv.core.envelope import is_envelope, open_envelope
from trending_arxiv.kafka import partition_of
from trending_arxiv.settings import CommonSettings


@dataclass(frozen=True)
class RawPost:
    """One post of posts.raw: a plain record, or one line of an envelope (then `key` is
    the post's own key, `headers` the envelope's and `line` its 1-based line)."""

    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int
    offset: int
    line: int | None = None


def posts_of(record: Any, partitions: int) -> list[RawPost]:
    """The posts of one raw record; asserts an envelope's keyed posts are on its partition
    (murmur2 of their key, as Kafka places single posts)."""
    headers = list(record.headers or [])
    if not is_envelope(headers):
        return [RawPost(record.value, record.key, headers, record.partition, record.offset)]
    posts = []
    for number, line in enumerate(open_envelope(record.value), start=1):
        key = key_of(line).key
        key_bytes = key.encode("utf-8", "surrogatepass") if key is not None else None
        if key_bytes is not None:
            assert partition_of(key_bytes, partitions) == record.partition, (key, record)
        posts.append(RawPost(line, key_bytes, headers, record.partition, record.offset, number))
    return posts


def fresh_namespace(prefix: str = "test-producers") -> str:
    """A namespace of our own, so topics never collide between tests or runs."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def read_topic(
    settings: CommonSettings,
    expected: int,
    timeout: float = 30.0,
    settle: float = 1.0,
) -> list[RawPost]:
    """Every post of the raw-posts topic (envelopes opened), waiting for `expected` posts
    then `settle` more seconds (so that extra, duplicated posts would show up too)."""
    consumer = KafkaConsumer(
        settings.topics.raw_posts,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=500,
    )
    records: list[RawPost] = []
    try:
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300)
            for partition_records in batch.values():
                partitions = len(consumer.partitions_for_topic(settings.topics.raw_posts) or ())
                for record in partition_records:
                    records.extend(posts_of(record, partitions))
            if len(records) >= expected and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
    finally:
        consumer.close()
    return records


def headers_of(record: Any) -> dict[str, bytes]:
    return {name: value for name, value in (record.headers or [])}


def delete_topic(settings: CommonSettings) -> None:
    """Remove the test's topic (best effort, keeps the local broker small)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        admin.delete_topics([settings.topics.raw_posts])
    except Exception:  # the topic may not exist; cleanup must not fail a test
        pass
    finally:
        admin.close()
