"""Ranking queries over the papers and mentions indices (used by the CLI and the API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from elasticsearch import Elasticsearch

from trending_arxiv.models import WINDOW_SECONDS, WINDOWS, to_utc_iso
from trending_arxiv.settings import CommonSettings

Sort = Literal["posts", "accounts", "score", "date"]
SORTS: tuple[str, ...] = ("posts", "accounts", "score", "date")
PAPER_SOURCE_FIELDS = [
    "arxiv_id", "title", "authors", "abstract", "categories", "primary_category", "published",
    "posts", "accounts", "trend_score", "velocity", "first_seen", "last_seen", "counts_as_of",
    "abs_url", "pdf_url", "metadata_status", "sources",
]


@dataclass(frozen=True)
class TrendingQuery:
    window: str = "all"
    sort: Sort = "posts"
    limit: int = 20
    offset: int = 0
    category: str | None = None

    def __post_init__(self) -> None:
        if self.window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}, got {self.window!r}")
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {self.sort!r}")
        if not 1 <= self.limit <= 10_000:
            raise ValueError(f"limit must be between 1 and 10000, got {self.limit}")
        if self.offset < 0:
            raise ValueError("offset must not be negative")


def _paper_row(source: dict[str, Any], window: str) -> dict[str, Any]:
    posts = source.get("posts") or {}
    accounts = source.get("accounts") or {}
    return {
        **source,
        "arxiv_id": source.get("arxiv_id"),
        "title": source.get("title"),
        "window": window,
        "posts": int(posts.get(window) or 0),
        "accounts": int(accounts.get(window) or 0),
        "posts_by_window": posts,
        "accounts_by_window": accounts,
    }


def top_papers(es: Elasticsearch, settings: CommonSettings, query: TrendingQuery) -> list[dict]:
    """Papers ranked for a window from the stream's counts in the papers index."""
    sort_field = {
        "posts": f"posts.{query.window}",
        "accounts": f"accounts.{query.window}",
        "score": "trend_score",
        "date": "published",
    }[query.sort]
    filters: list[dict[str, Any]] = [{"range": {f"posts.{query.window}": {"gt": 0}}}]
    if query.category:
        filters.append({"term": {"categories": query.category}})
    response = es.search(
        index=settings.indices.papers,
        query={"bool": {"filter": filters}},
        sort=[
            {sort_field: {"order": "desc", "missing": "_last", "unmapped_type": "long"}},
            {f"posts.{query.window}": {"order": "desc"}},
            {"arxiv_id": {"order": "asc"}},
        ],
        size=query.limit,
        from_=query.offset,
        source_includes=PAPER_SOURCE_FIELDS,
        track_total_hits=False,
    )
    return [_paper_row(hit["_source"], query.window) for hit in response["hits"]["hits"]]


def window_range(window: str, as_of: datetime) -> dict[str, Any] | None:
    """The `@timestamp` range filter of a window ending at `as_of` (None for 'all')."""
    seconds = WINDOW_SECONDS[window]
    upper = {"lte": to_utc_iso(as_of)}
    if seconds is None:
        return {"range": {"@timestamp": upper}}
    start = datetime.fromtimestamp(as_of.timestamp() - seconds, as_of.tzinfo)
    return {"range": {"@timestamp": {"gt": to_utc_iso(start), **upper}}}
