"""Handles resolved from the posts already seen: every mention stores its author's id and
handle, so a handle that posted about a paper needs no network lookup."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from trending_arxiv.core.accounts import AccountRef
from trending_arxiv.settings import CommonSettings

_CHUNK = 500


def _handle_key(source: str, handle: str) -> tuple[str, str]:
    return source, handle.lower().removeprefix("@")


def ids_of_handles_seen(
    es: Elasticsearch, settings: CommonSettings, refs: list[AccountRef]
) -> dict[tuple[str, str], str]:
    """(source, handle) -> author id, for the handles among `refs` that posted here.

    Handles are matched without regard to case (X and Mastodon handles are case-blind;
    Bluesky's are lower case). A missing mentions index means nothing was seen yet.
    """
    wanted = [ref for ref in refs if ref.is_handle]
    found: dict[tuple[str, str], str] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        should: list[dict[str, Any]] = [
            {"bool": {"filter": [
                {"term": {"source": ref.source}},
                {"term": {"author_handle": {"value": ref.value, "case_insensitive": True}}},
            ]}}
            for ref in chunk
        ]  # fmt: skip
        response = es.options(ignore_status=404).search(
            index=settings.indices.mentions,
            size=0,
            query={"bool": {"should": should, "minimum_should_match": 1,
                            "filter": [{"exists": {"field": "author_id"}}]}},
            aggs={"sources": {"terms": {"field": "source", "size": 16}, "aggs": {
                "handles": {"terms": {"field": "author_handle", "size": len(chunk) * 4},
                            "aggs": {"ids": {"terms": {"field": "author_id", "size": 1}}}},
            }}},
        )  # fmt: skip
        for per_source in response.get("aggregations", {}).get("sources", {}).get("buckets", []):
            for bucket in per_source["handles"]["buckets"]:
                ids = bucket["ids"]["buckets"]
                if ids:
                    key = _handle_key(per_source["key"], bucket["key"])
                    found.setdefault(key, str(ids[0]["key"]))
    return found
