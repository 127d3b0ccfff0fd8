"""Hourly mention counts of many papers in one round trip, for the page's sparklines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from trending_arxiv.core.models import parse_utc, to_utc_iso
from trending_arxiv.settings import CommonSettings

MAX_HOURS = 24 * 30
MAX_IDS = 100


def _hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _paper_ends(
    es: Elasticsearch, settings: CommonSettings, arxiv_ids: list[str]
) -> dict[str, datetime]:
    """Each paper's last_seen (the end of its sparkline when no as_of is given)."""
    response = es.mget(index=settings.indices.papers, ids=arxiv_ids, source_includes=["last_seen"])
    ends: dict[str, datetime] = {}
    for doc in response["docs"]:
        last_seen = (doc.get("_source") or {}).get("last_seen")
        if doc.get("found") and last_seen:
            ends[doc["_id"]] = parse_utc(last_seen)
    return ends


def hourly_histograms(
    es: Elasticsearch,
    settings: CommonSettings,
    arxiv_ids: list[str],
    hours: int = 168,
    as_of: datetime | None = None,
    user: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per paper: `{"end": iso, "counts": [n, ...]}`, `hours` hourly buckets, oldest first.

    Each series ends at `as_of` when given, else at the paper's own last mention, so an
    old paper still shows the shape of its activity rather than a flat line. With
    `user`, only the posts of the accounts that user follows count (as in their ranking).
    """
    if not 1 <= hours <= MAX_HOURS:
        raise ValueError(f"hours must be between 1 and {MAX_HOURS}, got {hours}")
    if len(arxiv_ids) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} papers per request, got {len(arxiv_ids)}")
    ids = list(dict.fromkeys(arxiv_ids))
    if not ids:
        return {}
    ends = {i: as_of for i in ids} if as_of else _paper_ends(es, settings, ids)
    searches: list[dict[str, Any]] = []
    order: list[tuple[str, datetime]] = []
    for arxiv_id in ids:
        end = ends.get(arxiv_id)
        if end is None:
            continue
        last_hour = _hour_floor(end)
        first_hour = last_hour - timedelta(hours=hours - 1)
        bounds = {"min": to_utc_iso(first_hour), "max": to_utc_iso(last_hour)}
        searches.append({"index": settings.indices.mentions})
        searches.append(
            {
                "size": 0,
                "query": {
                    "bool": {
                        "filter": [
                            {"term": {"arxiv_id": arxiv_id}},
                            *_user_filters(settings, user),
                            {
                                "range": {
                                    "@timestamp": {
                                        "gte": to_utc_iso(first_hour),
                                        "lte": to_utc_iso(end),
                                    }
                                }
                            },
                        ]
                    }
                },
                "aggs": {
                    "hours": {
                        "date_histogram": {
                            "field": "@timestamp",
                            "fixed_interval": "1h",
                            "min_doc_count": 0,
                            "extended_bounds": bounds,
                        }
                    }
                },
            }
        )
        order.append((arxiv_id, last_hour))
    result: dict[str, dict[str, Any]] = {}
    if not searches:
        return result
    responses = es.msearch(searches=searches)["responses"]
    for (arxiv_id, last_hour), response in zip(order, responses, strict=True):
        if "error" in response:
            raise ValueError(f"histogram query for {arxiv_id} failed: {response['error']}")
        by_hour = {
            int(bucket["key"]): int(bucket["doc_count"])
            for bucket in response["aggregations"]["hours"]["buckets"]
        }
        counts = []
        for step in range(hours - 1, -1, -1):
            hour = last_hour - timedelta(hours=step)
            counts.append(by_hour.get(int(hour.timestamp() * 1000), 0))
        result[arxiv_id] = {"end": to_utc_iso(last_hour), "counts": counts}
    return result


def _user_filters(settings: CommonSettings, user: str | None) -> list[dict[str, Any]]:
    """The posts of the accounts `user` follows (a terms lookup into their list)."""
    if not user:
        return []
    lookup = {"index": settings.indices.follows, "id": user, "path": "accounts"}
    return [{"terms": {"account": lookup}}]


def category_counts(
    es: Elasticsearch, settings: CommonSettings, size: int = 200
) -> list[dict[str, Any]]:
    """The categories of counted papers, most frequent first, for the category filter."""
    response = es.search(
        index=settings.indices.papers,
        size=0,
        query={"range": {"posts.all": {"gt": 0}}},
        aggs={"categories": {"terms": {"field": "categories", "size": size}}},
    )
    return [
        {"category": bucket["key"], "papers": bucket["doc_count"]}
        for bucket in response["aggregations"]["categories"]["buckets"]
    ]
