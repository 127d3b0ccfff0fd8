"""Ranking, search, paper detail and per-user trending (used by the CLI and the HTTP API).

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

from elasticsearch import Elasticsearch, NotFoundError

from trending_arxiv.core.counting import DEFAULT_HALF_LIFE_HOURS, window_bounds
from trending_arxiv.core.ids import paper_id
from trending_arxiv.core.models import WINDOWS, parse_utc, to_utc_iso
from trending_arxiv.core.vocabulary import (
    MAX_PAGE_SIZE,
    MAX_RESULT_WINDOW,
    MAX_SEARCH_TEXT,
    MAX_USER_NAME,
    SEARCH_SORTS,
    SORTS,
    SearchSort,
    Sort,
)
from trending_arxiv.settings import CommonSettings

#: Bounds of the trend score half-life a ranking may ask for.
HALF_LIFE_RANGE = (0.1, 24.0 * 30)
PAPER_SOURCE_FIELDS = [
    "arxiv_id", "title", "authors", "abstract", "categories", "primary_category", "published",
    "posts", "accounts", "trend_score", "velocity", "first_seen", "last_seen", "counts_as_of",
    "abs_url", "pdf_url", "metadata_status", "sources",
]  # fmt: skip
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
# Responses trimmed to what is read (`filter_path`; `took` for benchmarks): less JSON to
# send and parse per query.
_HITS_SOURCE = "took,hits.hits._source"
_STREAM_TIME = "aggregations.clock.latest.value_as_string"
_MGET_FIELDS = "docs._id,docs.found,docs._source"
_BUCKETS = "aggregations.papers.buckets"
_AGG_FIELDS = "took," + ",".join(
    f"{_BUCKETS}.{name}"
    for name in ("key", "doc_count", "accounts.value", "ages.buckets.key", "ages.buckets.doc_count")
)
_SEARCH_HIT_FIELDS = "took,hits.hits._id,hits.hits._score,hits.hits._source,hits.hits.highlight"
#: Elasticsearch's default `index.max_terms_count`, the most a terms lookup may return.
MAX_FOLLOWS = 65_536
#: With `as_of`/`source`/`user`, a score or date ranking looks at this many papers at most.
MAX_CANDIDATES = 10_000
HISTOGRAM_DAYS = 7
_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
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


def _check_common(
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
    if source is not None and not _SOURCE_NAME.match(source):
        raise ValueError(f"not a source name: {source!r} (e.g. x, bluesky, mastodon)")


class UnknownUserError(ValueError, LookupError):
    """A per-user ranking for a user with no stored follow list (HTTP 404, not 400)."""


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
        _check_common(self.window, self.limit, self.offset, self.category, self.source)
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {self.sort!r}")
        low, high = HALF_LIFE_RANGE
        if self.half_life_hours is not None and not low <= self.half_life_hours <= high:
            raise ValueError(f"half_life_hours must be between {low:g} and {high:g}")
        if self.user is not None:
            _check_user(self.user)
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
        _check_common(self.window, self.limit, self.offset, self.category, self.source)
        if self.user is not None:
            _check_user(self.user)
        if self.sort not in SEARCH_SORTS:
            raise ValueError(f"sort must be one of {', '.join(SEARCH_SORTS)}, got {self.sort!r}")
        if not isinstance(self.text, str) or not self.text.strip():
            raise ValueError("search text must not be empty")
        if len(self.text) > MAX_SEARCH_TEXT:
            raise ValueError(f"search text must be at most {MAX_SEARCH_TEXT} characters")
        if "\x00" in self.text:
            raise ValueError("search text must not contain NUL characters")


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


def _papers_sort(sort: str, window: str) -> list[dict[str, Any]]:
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


def _source_filter(source: str) -> dict[str, Any]:
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
        sort=_papers_sort(query.sort, query.window),
        size=query.limit,
        from_=query.offset,
        source_includes=PAPER_SOURCE_FIELDS,
        # The stream's time comes with the page: a `global` aggregation ignores the query.
        aggs=_STREAM_TIME_AGGS,
        track_total_hits=False,
        filter_path=f"{_HITS_SOURCE},{_STREAM_TIME}",
    )
    as_of = _stream_time_of(response)
    rows = [_paper_row(hit.get("_source", {}), query.window) for hit in _hits(response)]
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


def _hits(response: Any) -> list[dict[str, Any]]:
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


def _follows_filter(settings: CommonSettings, user: str) -> dict[str, Any]:
    """Posts of the accounts `user` follows; matches nothing when no list is stored.

    Elasticsearch reads the list itself (a terms lookup), so a ranking is one request;
    whether the list exists is only asked when nothing matched (see `_top_from_mentions`).
    """
    lookup = {"index": settings.indices.follows, "id": user, "path": "accounts"}
    return {"terms": {"account": lookup}}


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
        filters.append(_follows_filter(settings, query.user))
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
    papers = _mget_papers(es, settings, page, PAPER_SOURCE_FIELDS)
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
        sort=_papers_sort("date", "all"),
        size=query.limit,
        from_=query.offset,
        source=False,
        track_total_hits=False,
        filter_path="took,hits.hits._id",
    )
    page = [hit["_id"] for hit in _hits(response)]
    if len(page) < query.limit:
        # Papers without a document yet (counts not indexed) come last, by posts.
        have = set(page)
        known = set(_existing_ids(es, settings, candidates))
        rest = [i for i in candidates if i not in known and i not in have]
        skip = max(0, query.offset - len(known))
        page += rest[skip : skip + query.limit - len(page)]
    return page


def _existing_ids(es: Elasticsearch, settings: CommonSettings, ids: list[str]) -> list[str]:
    response = es.mget(
        index=settings.indices.papers, ids=ids, source=False, filter_path="docs._id,docs.found"
    )
    return [doc["_id"] for doc in response["docs"] if doc.get("found")]


def _mget_papers(
    es: Elasticsearch, settings: CommonSettings, ids: list[str], fields: list[str]
) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    response = es.mget(
        index=settings.indices.papers, ids=ids, source_includes=fields, filter_path=_MGET_FIELDS
    )
    return {doc["_id"]: doc.get("_source", {}) for doc in response["docs"] if doc.get("found")}


# -- full-text search ----------------------------------------------------------------------
def search_papers(es: Elasticsearch, settings: CommonSettings, query: SearchQuery) -> list[dict]:
    """Papers matching free text in title, abstract or authors, filtered and sorted."""
    filters: list[dict[str, Any]] = []
    if query.window != "all" or query.sort in ("posts", "accounts"):
        filters.append({"range": {f"posts.{query.window}": {"gt": 0}}})
    if query.category:
        filters.append({"term": {"categories": query.category}})
    if query.source:
        filters.append(_source_filter(query.source))
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
        sort = [*_papers_sort(query.sort, query.window)[:1], "_score"]
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
    for hit in _hits(response):
        row = _paper_row(hit.get("_source", {}), query.window)
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
        query={"bool": {"filter": [_follows_filter(settings, user)]}},
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


# -- follow lists ------------------------------------------------------------------------------
def _check_user(user: str) -> None:
    if not isinstance(user, str) or not user.strip() or len(user) > MAX_USER_NAME:
        raise ValueError(f"user must be a non-empty name of at most {MAX_USER_NAME} characters")
    if any(ord(c) < 32 for c in user):
        raise ValueError("user must not contain control characters")


def normalize_accounts(accounts: list[str]) -> list[str]:
    """Validated, de-duplicated, sorted `source:author_id` values."""
    cleaned: set[str] = set()
    for raw in accounts:
        if not isinstance(raw, str):
            raise ValueError(f"an account must be a string like 'x:12345', got {raw!r}")
        account = raw.strip()
        source, _, author = account.partition(":")
        if not _SOURCE_NAME.match(source) or not author or len(account) > 512:
            raise ValueError(
                f"not an account: {raw!r} (expected 'source:author_id', e.g. 'x:12345')"
            )
        cleaned.add(account)
    if len(cleaned) > MAX_FOLLOWS:
        raise ValueError(f"a follow list holds at most {MAX_FOLLOWS} accounts")
    return sorted(cleaned)


def store_follow_list(
    es: Elasticsearch,
    settings: CommonSettings,
    user: str,
    accounts: list[str],
    refresh: bool = True,
    handles: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Store (replace) a user's follow list; returns the stored document.

    `handles` (account -> handle, as resolved) is kept for display, never searched."""
    _check_user(user)
    doc: dict[str, Any] = {
        "user": user,
        "accounts": normalize_accounts(accounts),
        "updated_at": to_utc_iso(datetime.now(UTC)),
    }
    if handles:
        doc["handles"] = {a: h for a, h in sorted(handles.items()) if a in doc["accounts"]}
    es.index(
        index=settings.indices.follows, id=user, document=doc,
        refresh=refresh,
    )  # fmt: skip
    return doc


def get_follow_list(es: Elasticsearch, settings: CommonSettings, user: str) -> dict | None:
    """A user's stored follow list, or None."""
    _check_user(user)
    try:
        response = es.get(index=settings.indices.follows, id=user)
    except NotFoundError:
        return None
    source: dict[str, Any] = response["_source"]
    return source
