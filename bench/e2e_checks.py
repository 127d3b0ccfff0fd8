"""What `bench_e2e` checks a run against, read from Elasticsearch and Kafka: progress,
each paper's count and the alerts against the reference, and what Elasticsearch did."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from elasticsearch import Elasticsearch, NotFoundError
from elasticsearch.helpers import scan
from kafka import KafkaConsumer

from bench import common
from trending_arxiv.core.models import Alert
from trending_arxiv.settings import CommonSettings


def progress(es: Elasticsearch, settings: CommonSettings) -> tuple[int, int]:
    """(mentions indexed, sum of all-time post counts over papers), as searchable now."""
    try:
        mentions = es.count(index=settings.indices.mentions)["count"]
        agg = es.search(
            index=settings.indices.papers,
            size=0,
            aggs={"posts": {"sum": {"field": "posts.all"}}},
        )
        return mentions, int(agg["aggregations"]["posts"]["value"] or 0)
    except NotFoundError:
        return 0, 0


def exact_check(es: Elasticsearch, settings: CommonSettings, expected: dict[str, int]) -> dict:
    es.indices.refresh(index=settings.indices.papers)
    found = {
        hit["_id"]: (hit["_source"].get("posts") or {}).get("all", 0)
        for hit in scan(es, index=settings.indices.papers, _source=["posts.all"], size=5000)
    }
    found = {k: v for k, v in found.items() if v}
    wrong = [k for k in expected if found.get(k) != expected[k]]
    extra = [k for k in found if k not in expected]
    return {
        "papers_expected": len(expected),
        "papers_found": len(found),
        "papers_wrong": len(wrong),
        "papers_unexpected": len(extra),
        "examples": [(k, expected[k], found.get(k)) for k in wrong[:5]],
        "exact": not wrong and not extra,
    }


def alert_check(topic: str, expected: list[Alert], settle: float = 10.0) -> dict[str, Any]:
    """The alerts on `topic` against the reference's, by alert id (an alert sent twice
    keeps its id); read until none came for `settle` seconds, so the last moments'
    alerts, decided once the watermark passes them, are in."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=common.KAFKA,
        auto_offset_reset="earliest",
        consumer_timeout_ms=int(settle * 1000),
    )
    try:
        found = Counter(orjson.loads(record.value)["alert_id"] for record in consumer)
    finally:
        consumer.close()
    wanted = {alert.alert_id for alert in expected}
    missing, unexpected = wanted - found.keys(), found.keys() - wanted
    return {
        "expected": len(wanted),
        "found": len(found),
        "sent_twice": sum(count - 1 for count in found.values()),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "examples": sorted(missing)[:5] + sorted(unexpected)[:5],
        "exact": not missing and not unexpected,
    }


def index_work(es: Elasticsearch, settings: CommonSettings) -> dict[str, dict[str, int]]:
    """What Elasticsearch did for each of the run's indices (fresh ones: the totals are the
    run's): operations and the milliseconds its threads spent on them, by kind. Says
    where its CPU went (indexing, updates' gets, refreshes, merges, the bench's own
    progress queries)."""
    names = {"papers": settings.indices.papers, "mentions": settings.indices.mentions}
    stats = es.indices.stats(
        index=list(names.values()), metric="indexing,get,merge,refresh,search"
    )["indices"]
    work: dict[str, dict[str, int]] = {}
    for label, index in names.items():
        total = stats.get(index, {}).get("total", {})
        indexing, get = total.get("indexing", {}), total.get("get", {})
        merges, refresh = total.get("merges", {}), total.get("refresh", {})
        search = total.get("search", {})
        work[label] = {
            "index_ops": indexing.get("index_total", 0),
            "index_ms": indexing.get("index_time_in_millis", 0),
            "gets": get.get("total", 0),
            "get_ms": get.get("time_in_millis", 0),
            "refreshes": refresh.get("total", 0),
            "refresh_ms": refresh.get("total_time_in_millis", 0),
            "merges": merges.get("total", 0),
            "merge_ms": merges.get("total_time_in_millis", 0),
            "merged_docs": merges.get("total_docs", 0),
            "queries": search.get("query_total", 0),
            "query_ms": search.get("query_time_in_millis", 0),
        }
    return work
