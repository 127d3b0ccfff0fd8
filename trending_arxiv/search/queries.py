"""Ranking: trending papers per window and sort, as of one moment (CLI and HTTP API).

Search and paper detail live in `search.papers`, follow lists in `search.follows`.

Two ways to rank:

* the papers index (default): the stream's own counts per window, trend score and
  publication date, one cheap sorted search;
* the mentions index, when the question is one the stream doesn't answer directly: as of
  a moment (`as_of`), from one network (`source`), or from the accounts a user follows
  (`user`, a `terms` lookup into the follows index, so any number of users need no
  per-user state in the stream). A `terms` aggregation on `arxiv_id` counts posts, a
  `cardinality` sub-aggregation counts accounts, and the page of papers is joined with
  its metadata by `mget`.

Every ranking answers as of one moment: the one the caller names (`as_of`), else the
stream's time — the newest `counts_as_of` in the papers index, the moment of the latest
counts the stream published (`stream_time`). The mentions path measures its windows from
that moment with the stream's own edges (`counting.window_bounds`), so on any history a
filtered view counts exactly what the stream counts (per-source rankings add up to the
unfiltered one; a user who follows every account sees it unchanged).

All functions return plain JSON-able dicts; bad input raises ValueError with a clear
message. User text only ever reaches Elasticsearch inside `simple_query_string`, which
never fails on syntax.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from trending_arxiv.core.counting import DEFAULT_HALF_LIFE_HOURS, window_bounds
from trending_arxiv.core.models import WINDOWS, parse_utc, to_utc_iso
from trending_arxiv.core.vocabulary import (
    MAX_PAGE_SIZE,
    MAX_RESULT_WINDOW,
    SORTS,
    Sort,
)
from trending_arxiv.search.follows import (
    SOURCE_NAME,
    UnknownUserError,
    check_user,
    follows_filter,
    get_follow_list,
)
from trending_arxiv.settings import CommonSettings

#: Bounds of the trend score half-life a ranking may ask for.
HALF_LIFE_RANGE = (0.1, 24.0 * 30)
PAPER_SOURCE_FIELDS = [
    "arxiv_id", "title", "authors", "abstract", "categories", "primary_category", "published",
    "posts", "accounts", "trend_score", "velocity", "first_seen", "last_seen", "counts_as_of",
    "abs_url", "pdf_url", "metadata_status", "sources",
]  # fmt: skip
# Responses trimmed to what is read (`filter_path`; `took` for benchmarks): less JSON to
# send and parse per query.
_HITS_SOURCE = "took,hits.hits._source"
_STREAM_TIME = "aggregations.clock.latest.value_as_string"
_BUCKETS = "aggregations.papers.buckets"
_AGG_FIELDS = "took," + ",".join(
    f"{_BUCKETS}.{name}"
    for name in ("key", "doc_count", "accounts.value", "ages.buckets.key", "ages.buckets.doc_count")
)
#: With `as_of`/`source`/`user`, a score or date ranking looks at this many papers at most.
MAX_CANDIDATES = 10_000
HISTOGRAM_DAYS = 7
_CATEGORY = re.compile(r"^[A-Za-z][A-Za-z0-9.\-]{0,63}$")
# Age buckets (in half-lives) for the mentions-path trend score: decayed counts per bucket.
_SCORE_EDGES = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)


#: The moments a ranking may be asked about: arXiv began in 1991; the upper bound keeps
#: window arithmetic far from datetime's limits.
EARLIEST_AS_OF = datetime(1991, 1, 1, tzinfo=UTC)
LATEST_AS_OF = datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_as_of(moment: datetime | None) -> datetime | None:
    """`moment` as aware UTC; ValueError (a clear one) when no ranking can be that moment."""
    aware = _aware(moment)
    if aware is not None and not EARLIEST_AS_OF <= aware <= LATEST_AS_OF:
        raise ValueError(
            f"as_of must be between {EARLIEST_AS_OF:%Y-%m-%d} and {LATEST_AS_OF:%Y-%m-%d} "
            f"(arXiv began in 1991), got {to_utc_iso(aware)}"
        )
    return aware


def check_common(
    window: str, limit: int, offset: int, category: str | None, source: str | None
) -> None:
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    if offset < 0:
        raise ValueError("offset must not be negative")
    if offset + limit > MAX_RESULT_WINDOW:
        raise ValueError(f"offset + limit must not exceed {MAX_RESULT_WINDOW}")
    if category is not None and not _CATEGORY.match(category):
        raise ValueError(f"not an arXiv category: {category!r} (e.g. cs.LG, hep-th)")
    if source is not None and not SOURCE_NAME.match(source):
        raise ValueError(f"not a source name: {source!r} (e.g. x, bluesky, mastodon)")


@dataclass(frozen=True)
class TrendingQuery:
    window: str = "all"
    sort: Sort = "posts"
    limit: int = 20
    offset: int = 0
    category: str | None = None
    source: str | None = None
    as_of: datetime | None = None
    user: str | None = None
    #: Trend score half-life; set, the score is recomputed from the mentions index.
    half_life_hours: float | None = None

    def __post_init__(self) -> None:
        check_common(self.window, self.limit, self.offset, self.category, self.source)
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {self.sort!r}")
        low, high = HALF_LIFE_RANGE
        if self.half_life_hours is not None and not low <= self.half_life_hours <= high:
            raise ValueError(f"half_life_hours must be between {low:g} and {high:g}")
        if self.user is not None:
            check_user(self.user)
        object.__setattr__(self, "as_of", check_as_of(self.as_of))

    @property
    def uses_mentions(self) -> bool:
        """Whether the ranking needs the mentions index (see the module doc)."""
        return (
            self.as_of is not None
            or self.source is not None
            or self.user is not None
            or (self.half_life_hours is not None and self.sort == "score")
        )


def paper_row(source: dict[str, Any], window: str) -> dict[str, Any]:
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


def papers_sort(sort: str, window: str) -> list[dict[str, Any]]:
    field = {
        "posts": f"posts.{window}",
        "accounts": f"accounts.{window}",
        "score": "trend_rank",  # the same order as trend_score at any moment
        "date": "published",
    }[sort]
    if sort == "date":
        # Newest first, as the seed page: same-day papers by newest arXiv id.
        return [
            {"published": {"order": "desc", "missing": "_last", "unmapped_type": "date"}},
            {"arxiv_id": {"order": "desc", "unmapped_type": "keyword"}},
        ]
    ties = (
        [] if sort == "posts" else [{f"posts.{window}": {"order": "desc", "unmapped_type": "long"}}]
    )
    return [
        {field: {"order": "desc", "missing": "_last", "unmapped_type": "long"}},
        *ties,
        {"arxiv_id": {"order": "asc", "unmapped_type": "keyword"}},
    ]


def source_filter(source: str) -> dict[str, Any]:
    return {"range": {f"sources.{source}": {"gt": 0}}}


@dataclass(frozen=True)
class TrendingPage:
    """A page of ranked papers and the moment its windows end at (None: no counts yet)."""

    as_of: datetime | None
    papers: list[dict[str, Any]]


def top_papers(es: Elasticsearch, settings: CommonSettings, query: TrendingQuery) -> list[dict]:
    """Papers ranked for a window (see the module doc for which index answers)."""
    return trending_page(es, settings, query).papers


def trending_page(
    es: Elasticsearch, settings: CommonSettings, query: TrendingQuery
) -> TrendingPage:
    """Papers ranked for a window, as of the named moment or the stream's time."""
    if query.sort == "field":
        from trending_arxiv.search.field_ranking import top_by_field  # it imports this module

        moment = query.as_of or stream_time(es, settings)
        if query.uses_mentions and moment is not None:  # the mentions path: the same clock
            query = replace(query, as_of=moment)
        return TrendingPage(moment, top_by_field(es, settings, query))
    if query.uses_mentions:
        moment = query.as_of or stream_time(es, settings) or datetime.now(UTC)
        return TrendingPage(moment, _top_from_mentions(es, settings, query, moment))
    filters: list[dict[str, Any]] = [{"range": {f"posts.{query.window}": {"gt": 0}}}]
    if query.category:
        filters.append({"term": {"categories": query.category}})
    response = es.search(
        index=settings.indices.papers,
        query={"bool": {"filter": filters}},
        sort=papers_sort(query.sort, query.window),
        size=query.limit,
        from_=query.offset,
        source_includes=PAPER_SOURCE_FIELDS,
        # The stream's time comes with the page: a `global` aggregation ignores the query.
        aggs=_STREAM_TIME_AGGS,
        track_total_hits=False,
        filter_path=f"{_HITS_SOURCE},{_STREAM_TIME}",
    )
    as_of = _stream_time_of(response)
    rows = [paper_row(hit.get("_source", {}), query.window) for hit in hits_of(response)]
    for row in rows:
        row["as_of"] = to_utc_iso(as_of) if as_of else None
    return TrendingPage(as_of, rows)


_STREAM_TIME_AGGS = {
    "clock": {"global": {}, "aggs": {"latest": {"max": {"field": "counts_as_of"}}}}
}


def _stream_time_of(response: Any) -> datetime | None:
    latest = response.get("aggregations", {}).get("clock", {}).get("latest", {})
    value = latest.get("value_as_string")
    return parse_utc(value) if value else None


def stream_time(es: Elasticsearch, settings: CommonSettings) -> datetime | None:
    """The stream's time: the newest `counts_as_of` in the papers index (None if no counts).

    Each refresh re-sends the papers whose windows changed, so every paper's counts hold
    at this moment (up to one refresh interval on live data)."""
    response = es.search(
        index=settings.indices.papers, size=0, aggs=_STREAM_TIME_AGGS,
        track_total_hits=False, filter_path=_STREAM_TIME,
    )  # fmt: skip
    return _stream_time_of(response)


def hits_of(response: Any) -> list[dict[str, Any]]:
    """The hits of a search; a filtered response of no hits has no `hits` key at all."""
    hits: list[dict[str, Any]] = response.get("hits", {}).get("hits", [])
    return hits


def window_range(window: str, as_of: datetime) -> dict[str, Any]:
    """The `@timestamp` range filter of a window at `as_of`: the stream's own edges."""
    start, end = window_bounds(window, as_of)
    span = {"lte": to_utc_iso(datetime.fromtimestamp(end, UTC))}
    if start is not None:
        span["gt"] = to_utc_iso(datetime.fromtimestamp(start, UTC))
    return {"range": {"@timestamp": span}}


def _score_ranges(as_of: datetime, half_life_hours: float) -> list[dict[str, Any]]:
    """`range` buckets of post age (newest first), keyed by their index."""
    ranges = []
    for i in range(len(_SCORE_EDGES) - 1):
        young = as_of - timedelta(hours=_SCORE_EDGES[i] * half_life_hours)
        old = as_of - timedelta(hours=_SCORE_EDGES[i + 1] * half_life_hours)
        ranges.append({"key": str(i), "from": to_utc_iso(old), "to": to_utc_iso(young)})
    return ranges


def decayed_score(bucket_counts: dict[str, int]) -> float:
    """Posts weighted 2^-age (age in half-lives, at each bucket's middle), summed."""
    score = 0.0
    for i in range(len(_SCORE_EDGES) - 1):
        middle = (_SCORE_EDGES[i] + _SCORE_EDGES[i + 1]) / 2
        score += bucket_counts.get(str(i), 0) * math.pow(2.0, -middle)
    return round(score, 6)


def _top_from_mentions(
    es: Elasticsearch, settings: CommonSettings, query: TrendingQuery, as_of: datetime
) -> list[dict]:
    filters: list[dict[str, Any]] = [window_range(query.window, as_of)]
    if query.source:
        filters.append({"term": {"source": query.source}})
    if query.category:
        filters.append({"term": {"categories": query.category}})
    if query.user:
        filters.append(follows_filter(settings, query.user))
    wanted = query.offset + query.limit
    # breadth_first: the sub-aggregations run for the top buckets only, not for every
    # paper of the window (Elasticsearch picks it by itself only when it knows that the
    # field has more terms than `size`). An order by a sub-aggregation needs depth_first.
    mode = "depth_first" if query.sort == "accounts" else "breadth_first"
    if query.sort == "posts":
        size, order = wanted, [{"_count": "desc"}, {"_key": "asc"}]
    elif query.sort == "accounts":
        size, order = wanted, [{"accounts": "desc"}, {"_count": "desc"}, {"_key": "asc"}]
    elif query.sort == "score":
        # Candidates by posts, re-ranked by the decayed score below.
        size, order = min(MAX_CANDIDATES, max(200, 5 * wanted)), [{"_count": "desc"}]
    else:
        size, order = MAX_CANDIDATES, [{"_count": "desc"}]
    sub_aggs: dict[str, Any] = {
        "accounts": {"cardinality": {"field": "account", "precision_threshold": 40_000}},
    }
    if query.sort != "date":
        sub_aggs["ages"] = {
            "date_range": {"field": "@timestamp",
                           "ranges": _score_ranges(
                               as_of, query.half_life_hours or DEFAULT_HALF_LIFE_HOURS)}
        }  # fmt: skip
    response = es.search(
        index=settings.indices.mentions,
        query={"bool": {"filter": filters}},
        size=0,
        aggs={"papers": {"terms": {"field": "arxiv_id", "size": size, "order": order,
                                   "collect_mode": mode},
                         "aggs": sub_aggs}},
        track_total_hits=False,
        filter_path=_AGG_FIELDS,
    )  # fmt: skip
    buckets = response.get("aggregations", {}).get("papers", {}).get("buckets", [])
    # An empty ranking may mean an unknown user: only then is the list looked up.
    if not buckets and query.user and get_follow_list(es, settings, query.user) is None:
        raise UnknownUserError(f"no follow list stored for user {query.user!r}")
    counts: dict[str, dict[str, Any]] = {}
    for bucket in buckets:
        ages = {b["key"]: b["doc_count"] for b in bucket.get("ages", {}).get("buckets", [])}
        counts[bucket["key"]] = {
            "posts": bucket["doc_count"],
            "accounts": bucket["accounts"]["value"],
            "trend_score": decayed_score(ages) if "ages" in bucket else None,
        }
    if query.sort == "date":
        page = _page_by_date(es, settings, list(counts), query)
    else:
        ranked = list(counts)
        if query.sort == "score":
            ranked.sort(key=lambda i: (-(counts[i]["trend_score"] or 0.0), -counts[i]["posts"]))
        page = ranked[query.offset : wanted]
    papers = mget_papers(es, settings, page, PAPER_SOURCE_FIELDS)
    rows = []
    for arxiv_id in page:
        paper = papers.get(arxiv_id) or {"arxiv_id": arxiv_id}
        numbers = counts[arxiv_id]
        row = {
            **paper,
            "arxiv_id": arxiv_id,
            "title": paper.get("title"),
            "window": query.window,
            "as_of": to_utc_iso(as_of),
            "posts": numbers["posts"],
            "accounts": numbers["accounts"],
            "posts_by_window": {query.window: numbers["posts"]},
            "accounts_by_window": {query.window: numbers["accounts"]},
        }
        if numbers["trend_score"] is not None:
            row["trend_score"] = numbers["trend_score"]
        rows.append(row)
    return rows


def _page_by_date(
    es: Elasticsearch, settings: CommonSettings, candidates: list[str], query: TrendingQuery
) -> list[str]:
    if not candidates:
        return []
    response = es.search(
        index=settings.indices.papers,
        query={"ids": {"values": candidates}},
        sort=papers_sort("date", "all"),
        size=query.limit,
        from_=query.offset,
        source=False,
        track_total_hits=False,
        filter_path="took,hits.hits._id",
    )
    page = [hit["_id"] for hit in hits_of(response)]
    if len(page) < query.limit:
        # Papers without a document yet (counts not indexed) come last, by posts.
        have = set(page)
        known = set(_existing_ids(es, settings, candidates))
        rest = [i for i in candidates if i not in known and i not in have]
        skip = max(0, query.offset - len(known))
        page += rest[skip : skip + query.limit - len(page)]
    return page


_MGET_FIELDS = "docs._id,docs.found,docs._source"


def _existing_ids(es: Elasticsearch, settings: CommonSettings, ids: list[str]) -> list[str]:
    response = es.mget(
        index=settings.indices.papers, ids=ids, source=False, filter_path="docs._id,docs.found"
    )
    return [doc["_id"] for doc in response["docs"] if doc.get("found")]


def mget_papers(
    es: Elasticsearch, settings: CommonSettings, ids: list[str], fields: list[str]
) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    response = es.mget(
        index=settings.indices.papers, ids=ids, source_includes=fields, filter_path=_MGET_FIELDS
    )
    return {doc["_id"]: doc.get("_source", {}) for doc in response["docs"] if doc.get("found")}
