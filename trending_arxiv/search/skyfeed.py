"""Elasticsearch reads of the Bluesky feed generator: a feed's skeleton, page by page.

The ranking is the one `/api/trending` gives (`queries.top_papers`), taken as of the
stream's time (`stream_time`) and pinned there by the cursor; `bluesky_posts` picks the
post shown for each ranked paper from the mentions index (see
`trending_arxiv.core.skyfeed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from trending_arxiv.core.models import mention_document_id, parse_utc, to_utc_iso
from trending_arxiv.core.skyfeed import (
    MAX_POSITION,
    SkeletonCursor,
    best_post,
    post_uri,
    skeleton_page,
)
from trending_arxiv.search import queries
from trending_arxiv.settings import CommonSettings

#: Papers ranked per step of a page's walk through the ranking.
RANKING_STEP = 100
#: Reposted posts and earliest posts looked at per paper.
CANDIDATES_PER_PAPER = 10


@dataclass(frozen=True)
class FeedView:
    """Which ranking a feed shows (the `/api/trending` parameters a feed fixes)."""

    window: str = "24h"
    sort: queries.Sort = "posts"
    category: str | None = None
    source: str | None = None
    user: str | None = None


def stream_time(es: Elasticsearch, settings: CommonSettings) -> datetime | None:
    """The newest `counts_as_of` of the papers index: the moment the stream's counts hold
    for (None before anything was counted)."""
    response = es.search(
        index=settings.indices.papers,
        size=0,
        aggs={"newest": {"max": {"field": "counts_as_of"}}},
        track_total_hits=False,
        filter_path="aggregations.newest.value_as_string",
    )
    value = response.get("aggregations", {}).get("newest", {}).get("value_as_string")
    return parse_utc(value) if value else None


def bluesky_posts(
    es: Elasticsearch, settings: CommonSettings, arxiv_ids: list[str], as_of: datetime
) -> dict[str, str]:
    """For each paper that has one, the Bluesky post that best represents it as of `as_of`:
    the most reposted (by the reposts seen; deleted posts left out), else the earliest."""
    if not arxiv_ids:
        return {}
    response = es.search(
        index=settings.indices.mentions,
        size=0,
        query={"bool": {"filter": [
            {"terms": {"arxiv_id": arxiv_ids}},
            {"term": {"source": "bluesky"}},
            {"range": {"@timestamp": {"lte": to_utc_iso(as_of)}}},
        ]}},
        aggs={"papers": {
            "terms": {"field": "arxiv_id", "size": len(arxiv_ids)},
            "aggs": {
                "reposts": {
                    "filter": {"term": {"kind": "repost"}},
                    "aggs": {"subjects": {"terms": {
                        "field": "ref_post_id", "size": CANDIDATES_PER_PAPER,
                        "order": [{"_count": "desc"}, {"_key": "asc"}],
                    }}},
                },
                "posts": {
                    "filter": {"bool": {"must_not": [{"term": {"kind": "repost"}}]}},
                    "aggs": {"earliest": {"top_hits": {
                        "size": CANDIDATES_PER_PAPER,
                        "sort": [{"@timestamp": "asc"}, {"post_id": "asc"}],
                        "_source": ["post_id", "author_id", "@timestamp"],
                    }}},
                },
            },
        }},
        track_total_hits=False,
    )  # fmt: skip
    buckets = response.get("aggregations", {}).get("papers", {}).get("buckets", [])
    reposted = {
        bucket["key"]: {
            b["key"]: int(b["doc_count"]) for b in bucket["reposts"]["subjects"]["buckets"]
        }
        for bucket in buckets
    }
    present = _indexed_posts(es, settings, reposted)
    chosen: dict[str, str] = {}
    for bucket in buckets:
        arxiv_id = bucket["key"]
        # Reposts of a deleted post stay credited (the ledger keeps counts independent of
        # arrival order), but a deleted post is not one to show.
        reposts = {uri: n for uri, n in reposted[arxiv_id].items() if (uri, arxiv_id) in present}
        originals = []
        for hit in bucket["posts"]["earliest"]["hits"]["hits"]:
            source: dict[str, Any] = hit.get("_source", {})
            uri = post_uri(source.get("post_id"), source.get("author_id"))
            if uri and source.get("@timestamp"):
                originals.append((parse_utc(source["@timestamp"]), uri))
        best = best_post(reposts, originals)
        if best:
            chosen[arxiv_id] = best
    return chosen


def _indexed_posts(
    es: Elasticsearch, settings: CommonSettings, reposted: dict[str, dict[str, int]]
) -> set[tuple[str, str]]:
    """The (post, paper) pairs among reposted posts whose own mention is in the index."""
    pairs = [(uri, arxiv_id) for arxiv_id, posts in reposted.items() for uri in posts]
    if not pairs:
        return set()
    response = es.mget(
        index=settings.indices.mentions,
        ids=[mention_document_id(uri, arxiv_id) for uri, arxiv_id in pairs],
        source=False,
        filter_path="docs.found",
    )
    found = [bool(doc.get("found")) for doc in response["docs"]]
    return {pair for pair, exists in zip(pairs, found, strict=True) if exists}


def feed_skeleton(
    es: Elasticsearch,
    settings: CommonSettings,
    view: FeedView,
    limit: int,
    cursor: SkeletonCursor | None,
) -> tuple[list[str], SkeletonCursor | None]:
    """One page of a feed: post URIs in ranking order and the cursor of the next page.

    The first page ranks as of the stream's time; the cursor keeps that moment, so every
    page of a scroll ranks the same way (`/api/trending` with that `as_of`). Papers with
    no Bluesky post are passed over.
    """
    if not 1 <= limit <= 100:
        raise ValueError(f"limit must be between 1 and 100, got {limit}")
    if cursor is None:
        as_of = stream_time(es, settings)
        if as_of is None:
            return [], None
        cursor = SkeletonCursor(as_of, 0)
    posts: list[str] = []
    position = cursor.position
    while position < MAX_POSITION:
        step = min(RANKING_STEP, MAX_POSITION - position)
        query = queries.TrendingQuery(
            window=view.window, sort=view.sort, limit=step, offset=position,
            category=view.category, source=view.source, user=view.user, as_of=cursor.as_of,
        )  # fmt: skip
        rows = queries.top_papers(es, settings, query)
        ids = [str(row["arxiv_id"]) for row in rows]
        found = bluesky_posts(es, settings, ids, cursor.as_of)
        page, used, full = skeleton_page(((i, found.get(i)) for i in ids), limit - len(posts))
        posts.extend(page)
        position += used
        if full:
            more = position < MAX_POSITION and (used < len(rows) or len(rows) == step)
            return posts, SkeletonCursor(cursor.as_of, position) if more else None
        if len(rows) < step:
            break
    return posts, None
