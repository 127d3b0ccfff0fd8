"""The `field` sort ("unusual for its field") on Elasticsearch: aggregations + Python.

No scripts (the minimal Elasticsearch has none): the baseline of every field comes from
one aggregation, the percentiles are worked out here (`trending_arxiv.core.field_baseline`)
and only the page of papers is fetched.

* papers index (the default view): one request with two `filter` aggregations, each a
  `terms` on `primary_category` with a `histogram` (interval 1) of `accounts.<window>`:
  the baseline (papers with a post in the last 30 days) and the ranked papers (a post in
  the window, the category filter). Every (field, accounts) pair of the ranked papers has
  one percentile, so the page is found from the histograms alone and fetched by one
  `msearch`: one search for the pairs wholly on the page, one for each pair the page
  cuts (paged by arXiv id, the tie-break).
* mentions index (`as_of`, `source`, `user`): a `composite` aggregation pages through
  the view's papers with their category and distinct accounts in the window (exact up
  to `cardinality`'s 40,000 precision threshold), then everything is ranked here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from trending_arxiv.core.field_baseline import (
    BASELINE_DAYS,
    DEFAULT_FIELD_MIN_PAPERS,
    NO_CATEGORY,
    Baseline,
    baseline_for,
    field_baselines,
    field_sort_key,
)
from trending_arxiv.core.models import to_utc_iso
from trending_arxiv.search.follows import (
    UnknownUserError,
    follows_filter,
    get_follow_list,
)
from trending_arxiv.search.queries import (
    PAPER_SOURCE_FIELDS,
    TrendingQuery,
    mget_papers,
    paper_row,
    window_range,
)
from trending_arxiv.settings import CommonSettings

MAX_CATEGORIES = 1000  # arXiv has ~155 categories
COMPOSITE_PAGE = 5000


def _category_histograms(filters: list[dict[str, Any]], accounts_field: str) -> dict[str, Any]:
    return {
        "filter": {"bool": {"filter": filters}},
        "aggs": {"fields": {
            "terms": {"field": "primary_category", "size": MAX_CATEGORIES,
                      "missing": NO_CATEGORY},
            "aggs": {"values": {"histogram": {"field": accounts_field, "interval": 1,
                                              "min_doc_count": 1}}},
        }},
    }  # fmt: skip


def _histograms(response: Any, name: str) -> dict[str, dict[int, int]]:
    buckets = response["aggregations"][name]["fields"]["buckets"]
    return {
        str(b["key"]): {int(h["key"]): int(h["doc_count"]) for h in b["values"]["buckets"]}
        for b in buckets
    }


def _field_numbers(baseline: Baseline, percentile: float) -> dict[str, Any]:
    return {
        "field": baseline.field,
        "field_level": baseline.level,
        "field_papers": baseline.papers,
        "field_percentile": percentile,
    }


def top_by_field(
    es: Elasticsearch,
    settings: CommonSettings,
    query: TrendingQuery,
    min_papers: int = DEFAULT_FIELD_MIN_PAPERS,
) -> list[dict[str, Any]]:
    """Papers ranked by the `field` sort (see the module doc)."""
    if query.uses_mentions:
        return _from_mentions(es, settings, query, min_papers)
    return _from_papers(es, settings, query, min_papers)


def _category_filter(categories: list[str]) -> dict[str, Any]:
    named = [c for c in categories if c != NO_CATEGORY]
    should: list[dict[str, Any]] = []
    if named:
        should.append({"terms": {"primary_category": named}})
    if NO_CATEGORY in categories:
        should.append({"bool": {"must_not": [{"exists": {"field": "primary_category"}}]}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _from_papers(
    es: Elasticsearch, settings: CommonSettings, query: TrendingQuery, min_papers: int
) -> list[dict[str, Any]]:
    accounts = f"accounts.{query.window}"
    listed: list[dict[str, Any]] = [{"range": {f"posts.{query.window}": {"gt": 0}}}]
    if query.category:
        listed.append({"term": {"categories": query.category}})
    response = es.search(
        index=settings.indices.papers,
        size=0,
        aggs={
            "baseline": _category_histograms([{"range": {"posts.30d": {"gt": 0}}}], accounts),
            "listed": _category_histograms(listed, accounts),
        },
        track_total_hits=False,
    )
    baselines = field_baselines(_histograms(response, "baseline"), min_papers)
    # (percentile, accounts) -> the categories holding such papers and how many.
    groups: dict[tuple[float, int], list[tuple[str, int]]] = defaultdict(list)
    chosen: dict[str, Baseline] = {}
    for category, histogram in _histograms(response, "listed").items():
        baseline = chosen[category] = baseline_for(baselines, category)
        for value, papers in histogram.items():
            groups[(baseline.percentile(value), value)].append((category, papers))
    start, end = query.offset, query.offset + query.limit
    # Groups wholly on the page come in one search (Python orders them); a group cut by
    # the page's start or end (two at most) is paged by arXiv id in a search of its own.
    whole: list[dict[str, Any]] = []
    whole_size = 0
    searches: list[dict[str, Any]] = []
    position = 0
    for percentile, value in sorted(groups, key=lambda k: (-k[0], -k[1])):
        members = groups[(percentile, value)]
        size = sum(n for _, n in members)
        if position + size > start and position < end:
            skip = max(0, start - position)
            take = min(size - skip, end - max(position, start))
            group = {
                "bool": {
                    "filter": [
                        {"term": {accounts: value}},
                        _category_filter([c for c, _ in members]),
                    ]
                }
            }
            if skip == 0 and take == size:
                whole.append(group)
                whole_size += size
            else:
                searches += [{"index": settings.indices.papers}, {
                    "query": {"bool": {"filter": [*listed, group]}},
                    "sort": [{"arxiv_id": {"order": "asc"}}], "from": skip, "size": take,
                    "_source": PAPER_SOURCE_FIELDS, "track_total_hits": False,
                }]  # fmt: skip
        position += size
        if position >= end:
            break
    if whole:
        searches += [{"index": settings.indices.papers}, {
            "query": {"bool": {"filter": listed, "should": whole, "minimum_should_match": 1}},
            "size": whole_size, "_source": PAPER_SOURCE_FIELDS, "track_total_hits": False,
        }]  # fmt: skip
    if not searches:
        return []
    rows: list[dict[str, Any]] = []
    for answer in es.msearch(searches=searches)["responses"]:
        if "error" in answer:
            raise RuntimeError(f"field ranking failed: {answer['error']}")
        for hit in answer["hits"]["hits"]:
            row = paper_row(hit["_source"], query.window)
            baseline = chosen[row.get("primary_category") or NO_CATEGORY]
            row.update(_field_numbers(baseline, baseline.percentile(row["accounts"])))
            rows.append(row)
    rows.sort(key=lambda r: field_sort_key(r["field_percentile"], r["accounts"], r["arxiv_id"]))
    return rows


def _view_papers(
    es: Elasticsearch,
    settings: CommonSettings,
    filters: list[dict[str, Any]],
    window_filter: dict[str, Any],
    recent_filter: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Every paper of the view: primary category, categories, accounts in the window and
    whether it is in the 30-day baseline (a `composite` aggregation, page by page)."""
    papers: dict[str, dict[str, Any]] = {}
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {
            "size": COMPOSITE_PAGE,
            "sources": [{"arxiv_id": {"terms": {"field": "arxiv_id"}}}],
        }
        if after:
            composite["after"] = after
        response = es.search(
            index=settings.indices.mentions,
            size=0,
            query={"bool": {"filter": filters}},
            aggs={"papers": {"composite": composite, "aggs": {
                "primary": {"terms": {"field": "primary_category", "size": 1}},
                "categories": {"terms": {"field": "categories", "size": 50}},
                "window": {"filter": window_filter, "aggs": {"accounts": {
                    "cardinality": {"field": "account", "precision_threshold": 40_000}}}},
                "recent": {"filter": recent_filter},
            }}},
            track_total_hits=False,
        )  # fmt: skip
        result = response.get("aggregations", {}).get("papers", {})
        for bucket in result.get("buckets", []):
            primary = bucket["primary"]["buckets"]
            papers[bucket["key"]["arxiv_id"]] = {
                "primary_category": primary[0]["key"] if primary else NO_CATEGORY,
                "categories": [b["key"] for b in bucket["categories"]["buckets"]],
                "accounts": int(bucket["window"]["accounts"]["value"]),
                "posts": int(bucket["window"]["doc_count"]),
                "recent": bucket["recent"]["doc_count"] > 0,
            }
        after = result.get("after_key")
        if not after or len(result.get("buckets", [])) < COMPOSITE_PAGE:
            return papers


def _from_mentions(
    es: Elasticsearch, settings: CommonSettings, query: TrendingQuery, min_papers: int
) -> list[dict[str, Any]]:
    as_of = query.as_of or datetime.now(UTC)
    since = as_of - timedelta(days=BASELINE_DAYS)
    recent = {"range": {"@timestamp": {"gt": to_utc_iso(since), "lte": to_utc_iso(as_of)}}}
    window = window_range(query.window, as_of) or {"match_all": {}}
    everything = window_range("all", as_of) or {"match_all": {}}
    filters: list[dict[str, Any]] = [everything if query.window == "all" else recent]
    if query.source:
        filters.append({"term": {"source": query.source}})
    if query.user:
        filters.append(follows_filter(settings, query.user))
    papers = _view_papers(es, settings, filters, window, recent)
    if not papers and query.user and get_follow_list(es, settings, query.user) is None:
        raise UnknownUserError(f"no follow list stored for user {query.user!r}")
    population: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for paper in papers.values():
        if paper["recent"]:
            population[paper["primary_category"]][paper["accounts"]] += 1
    baselines = field_baselines(population, min_papers)
    ranked = []
    for arxiv_id, paper in papers.items():
        if paper["posts"] == 0 or (query.category and query.category not in paper["categories"]):
            continue
        baseline = baseline_for(baselines, paper["primary_category"])
        percentile = baseline.percentile(paper["accounts"])
        ranked.append((field_sort_key(percentile, paper["accounts"], arxiv_id), baseline))
    ranked.sort(key=lambda item: item[0])
    page = ranked[query.offset : query.offset + query.limit]
    metadata = mget_papers(es, settings, [key[2] for key, _ in page], PAPER_SOURCE_FIELDS)
    rows = []
    for (negative_percentile, _, arxiv_id), baseline in page:
        paper, found = papers[arxiv_id], metadata.get(arxiv_id) or {"arxiv_id": arxiv_id}
        rows.append({
            **found, "arxiv_id": arxiv_id, "title": found.get("title"), "window": query.window,
            "as_of": to_utc_iso(as_of), "posts": paper["posts"], "accounts": paper["accounts"],
            "posts_by_window": {query.window: paper["posts"]},
            "accounts_by_window": {query.window: paper["accounts"]},
            **_field_numbers(baseline, -negative_percentile),
        })  # fmt: skip
    return rows
