"""Search, paper detail and the papers' metadata by id (used by the CLI and the HTTP API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from trending_arxiv.core.ids import paper_id
from trending_arxiv.core.models import WINDOWS, parse_utc, to_utc_iso
from trending_arxiv.core.vocabulary import (
    MAX_SEARCH_TEXT,
    SEARCH_SORTS,
    SearchSort,
)
from trending_arxiv.search.follows import (
    UnknownUserError,
    check_user,
    follows_filter,
    get_follow_list,
)
from trending_arxiv.search.queries import (
    HISTOGRAM_DAYS,
    MAX_CANDIDATES,
    PAPER_SOURCE_FIELDS,
    check_as_of,
    check_common,
    hits_of,
    paper_row,
    papers_sort,
    source_filter,
    window_range,
)
from trending_arxiv.settings import CommonSettings

DETAIL_SOURCE_FIELDS = [
    *PAPER_SOURCE_FIELDS, "updated", "doi", "journal_ref", "comment", "metadata_source",
    "enriched_at",
]  # fmt: skip


SEARCH_FIELDS = ["title^3", "abstract", "authors^2"]


# Operators users may type; FUZZY/NEAR/SLOP are left out because they are costly.
SEARCH_FLAGS = "AND|OR|NOT|PHRASE|PRECEDENCE|PREFIX|WHITESPACE|ESCAPE"


# The author's id (`account`, what follow lists hold) next to the handle people know.
POST_FIELDS = ["post_id", "url", "source", "kind", "author_handle", "author_id", "account", "text",
               "@timestamp"]  # fmt: skip


_SEARCH_HIT_FIELDS = "took,hits.hits._id,hits.hits._score,hits.hits._source,hits.hits.highlight"


@dataclass(frozen=True)
class SearchQuery:
    text: str
    window: str = "all"
    sort: SearchSort = "relevance"
    limit: int = 20
    offset: int = 0
    category: str | None = None
    source: str | None = None
    #: Only papers posted by the accounts this user follows (their stored list).
    user: str | None = None

    def __post_init__(self) -> None:
        check_common(self.window, self.limit, self.offset, self.category, self.source)
        if self.user is not None:
            check_user(self.user)
        if self.sort not in SEARCH_SORTS:
            raise ValueError(f"sort must be one of {', '.join(SEARCH_SORTS)}, got {self.sort!r}")
        if not isinstance(self.text, str) or not self.text.strip():
            raise ValueError("search text must not be empty")
        if len(self.text) > MAX_SEARCH_TEXT:
            raise ValueError(f"search text must be at most {MAX_SEARCH_TEXT} characters")
        if "\x00" in self.text:
            raise ValueError("search text must not contain NUL characters")


# -- full-text search ----------------------------------------------------------------------
def search_papers(es: Elasticsearch, settings: CommonSettings, query: SearchQuery) -> list[dict]:
    """Papers matching free text in title, abstract or authors, filtered and sorted."""
    filters: list[dict[str, Any]] = []
    if query.window != "all" or query.sort in ("posts", "accounts"):
        filters.append({"range": {f"posts.{query.window}": {"gt": 0}}})
    if query.category:
        filters.append({"term": {"categories": query.category}})
    if query.source:
        filters.append(source_filter(query.source))
    if query.user:
        filters.append({"ids": {"values": _papers_followed(es, settings, query.user)}})
    text_query = {
        "simple_query_string": {
            "query": query.text,
            "fields": SEARCH_FIELDS,
            "default_operator": "and",
            "flags": SEARCH_FLAGS,
            "lenient": True,
        }
    }
    sort: list[Any]
    if query.sort == "relevance":
        sort = ["_score", {"arxiv_id": {"order": "asc", "unmapped_type": "keyword"}}]
    else:
        sort = [*papers_sort(query.sort, query.window)[:1], "_score"]
    response = es.search(
        index=settings.indices.papers,
        query={"bool": {"must": [text_query], "filter": filters}},
        sort=sort,
        size=query.limit,
        from_=query.offset,
        source_includes=PAPER_SOURCE_FIELDS,
        highlight={
            "fields": {
                "title": {"number_of_fragments": 0},
                "abstract": {"fragment_size": 200, "number_of_fragments": 1},
            },
            "pre_tags": ["**"],
            "post_tags": ["**"],
        },
        track_total_hits=False,
        track_scores=True,
        filter_path=_SEARCH_HIT_FIELDS,
    )
    rows = []
    for hit in hits_of(response):
        row = paper_row(hit.get("_source", {}), query.window)
        row["arxiv_id"] = row["arxiv_id"] or hit["_id"]
        row["relevance"] = hit.get("_score")
        row["highlight"] = hit.get("highlight", {})
        rows.append(row)
    return rows


def _papers_followed(es: Elasticsearch, settings: CommonSettings, user: str) -> list[str]:
    """The papers the accounts `user` follows have posted (the MAX_CANDIDATES they posted
    most); UnknownUserError when the user has no stored follow list."""
    response = es.search(
        index=settings.indices.mentions,
        query={"bool": {"filter": [follows_filter(settings, user)]}},
        size=0,
        aggs={"papers": {"terms": {"field": "arxiv_id", "size": MAX_CANDIDATES}}},
        track_total_hits=False,
    )
    buckets = response.get("aggregations", {}).get("papers", {}).get("buckets", [])
    if not buckets and get_follow_list(es, settings, user) is None:
        raise UnknownUserError(f"no follow list stored for user {user!r}")
    return [bucket["key"] for bucket in buckets]


# -- one paper ---------------------------------------------------------------------------------
def paper_detail(
    es: Elasticsearch,
    settings: CommonSettings,
    arxiv_id: str,
    posts_limit: int = 50,
    as_of: datetime | None = None,
) -> dict | None:
    """Metadata, counts, posts (newest first) and an hourly histogram; None if unknown."""
    canonical = paper_id(arxiv_id)
    if canonical is None:
        raise ValueError(f"not an arXiv identifier: {arxiv_id!r}")
    if not 0 <= posts_limit <= 1000:
        raise ValueError("posts_limit must be between 0 and 1000")
    as_of = check_as_of(as_of)
    try:
        paper = es.get(
            index=settings.indices.papers, id=canonical, source_includes=DETAIL_SOURCE_FIELDS
        )["_source"]
    except NotFoundError:
        paper = None
    mention_filters: list[dict[str, Any]] = [{"term": {"arxiv_id": canonical}}]
    if as_of is not None:
        mention_filters.append({"range": {"@timestamp": {"lte": to_utc_iso(as_of)}}})
    end = as_of
    if end is None and paper and paper.get("last_seen"):
        end = parse_utc(paper["last_seen"])
    response = es.options(ignore_status=404).search(
        index=settings.indices.mentions,
        query={"bool": {"filter": mention_filters}},
        sort=[{"@timestamp": {"order": "desc"}}, {"post_id": {"order": "asc"}}],
        size=posts_limit,
        source_includes=POST_FIELDS,
        aggs={"newest": {"max": {"field": "@timestamp"}}},
        track_total_hits=True,
    )
    hits = response.get("hits", {})
    total = int(hits.get("total", {}).get("value", 0))
    if paper is None and total == 0:
        return None
    if end is None:
        newest = response.get("aggregations", {}).get("newest", {}).get("value_as_string")
        end = parse_utc(newest) if newest else datetime.now(UTC)
    detail: dict[str, Any] = dict(paper or {"arxiv_id": canonical})
    detail["arxiv_id"] = canonical
    detail["posts_by_window"] = detail.pop("posts", None) or {}
    detail["accounts_by_window"] = detail.pop("accounts", None) or {}
    if as_of is not None:
        detail["posts_by_window"], detail["accounts_by_window"] = _window_counts(
            es, settings, canonical, as_of
        )
    detail["mentions_total"] = total
    detail["as_of"] = to_utc_iso(end)
    detail["posts"] = [hit["_source"] for hit in hits.get("hits", [])]
    detail["histogram"] = _hourly_histogram(es, settings, canonical, end) if total else []
    return detail


def _window_counts(
    es: Elasticsearch, settings: CommonSettings, arxiv_id: str, as_of: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    aggs = {
        window: {
            "filter": window_range(window, as_of),
            "aggs": {"accounts": {"cardinality": {"field": "account"}}},
        }
        for window in WINDOWS
    }
    response = es.search(
        index=settings.indices.mentions,
        query={"term": {"arxiv_id": arxiv_id}},
        size=0,
        aggs=aggs,
        track_total_hits=False,
    )
    found = response["aggregations"]
    posts = {w: int(found[w]["doc_count"]) for w in WINDOWS}
    accounts = {w: int(found[w]["accounts"]["value"]) for w in WINDOWS}
    return posts, accounts


def _hourly_histogram(
    es: Elasticsearch, settings: CommonSettings, arxiv_id: str, end: datetime
) -> list[dict[str, Any]]:
    """Mentions per hour over the paper's activity in the 7 days up to `end` (gaps = 0)."""
    start = end - timedelta(days=HISTOGRAM_DAYS)
    response = es.search(
        index=settings.indices.mentions,
        query={"bool": {"filter": [
            {"term": {"arxiv_id": arxiv_id}},
            {"range": {"@timestamp": {"gt": to_utc_iso(start), "lte": to_utc_iso(end)}}},
        ]}},
        size=0,
        aggs={"hours": {"date_histogram": {
            "field": "@timestamp", "fixed_interval": "1h", "min_doc_count": 0,
        }}},
        track_total_hits=False,
    )  # fmt: skip
    return [
        {"hour": to_utc_iso(datetime.fromtimestamp(b["key"] / 1000, UTC)), "count": b["doc_count"]}
        for b in response["aggregations"]["hours"]["buckets"]
    ]
