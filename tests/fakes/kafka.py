"""Helpers for tests that check what producers wrote to the real Kafka."""

from __future__ import annotations

import time
import uuid
from typing import Any

from kafka import KafkaConsumer

from trending_arxiv.settings import CommonSettings


def fresh_namespace(prefix: str = "test-producers") -> str:
    """A namespace of our own, so topics never collide between tests or runs."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def read_topic(
    settings: CommonSettings,
    expected: int,
    timeout: float = 30.0,
    settle: float = 1.0,
) -> list[Any]:
    """Every record of the raw-posts topic, waiting for `expected` then `settle` more
    seconds (so that extra, duplicated records would show up too)."""
    consumer = KafkaConsumer(
        settings.topics.raw_posts,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=500,
    )
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300)
            for partition_records in batch.values():
                records.extend(partition_records)
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
