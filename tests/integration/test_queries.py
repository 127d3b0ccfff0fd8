"""Ranking, search, paper detail and per-user trending on the real Elasticsearch."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from sinks.indices import ensure_indices
from trending_arxiv.core.documents import mention_document, metadata_document
from trending_arxiv.core.models import Mention, to_utc_iso
from trending_arxiv.search.follows import UnknownUserError, get_follow_list, store_follow_list
from trending_arxiv.search.papers import SearchQuery, paper_detail, search_papers
from trending_arxiv.search.queries import TrendingQuery, top_papers
from trending_arxiv.settings import CommonSettings

pytestmark = pytest.mark.integration

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
A, B, C, D = "2401.00001", "2401.00002", "2401.00003", "0704.0001"

PAPERS: dict[str, dict[str, Any]] = {
    A: {
        "title": "Attention is all you need, again",
        "authors": ["Ada Lovelace", "Alan Turing"],
        "abstract": "We revisit transformers and self-attention for sequence modelling.",
        "categories": ["cs.LG", "cs.CL"],
        "primary_category": "cs.LG",
        "published": "2024-01-01T00:00:00Z",
    },
    B: {
        "title": "Notes on quantum gravity",
        "authors": ["Emmy Noether"],
        "abstract": "Symmetries and conserved quantities in quantum gravity.",
        "categories": ["hep-th"],
        "primary_category": "hep-th",
        "published": "2024-01-05T00:00:00Z",
    },
    C: {
        "title": "Graph neural networks: a survey",
        "authors": ["Grace Hopper"],
        "abstract": "A survey of message passing on graphs, with attention mechanisms.",
        "categories": ["cs.LG"],
        "primary_category": "cs.LG",
        "published": "2023-12-01T00:00:00Z",
    },
    D: {
        "title": "Calculation of prompt diphoton production cross sections",
        "authors": ["C. Balázs"],
        "abstract": "A fully differential calculation in QCD.",
        "categories": ["hep-ph"],
        "primary_category": "hep-ph",
        "published": "2007-04-02T19:18:42Z",
    },
}
COUNTS = {
    A: {
        "posts": {"1h": 1, "24h": 5, "7d": 9, "30d": 9, "all": 9},
        "accounts": {"1h": 1, "24h": 2, "7d": 3, "30d": 3, "all": 3},
        "trend_score": 2.0,
        "trend_rank": 1.0,  # log2 of the score: sorts as it does
        "sources": {"x": 9},
    },
    B: {
        "posts": {"1h": 4, "24h": 4, "7d": 4, "30d": 4, "all": 4},
        "accounts": {"1h": 4, "24h": 4, "7d": 4, "30d": 4, "all": 4},
        "trend_score": 5.0,
        "trend_rank": 2.321928,  # log2 of the score: sorts as it does
        "sources": {"bluesky": 4},
    },
    C: {
        "posts": {"1h": 0, "24h": 6, "7d": 6, "30d": 6, "all": 6},
        "accounts": {"1h": 0, "24h": 6, "7d": 6, "30d": 6, "all": 6},
        "trend_score": 1.0,
        "trend_rank": 0.0,  # log2 of the score: sorts as it does
        "sources": {"x": 3, "mastodon": 3},
    },
}


def _mentions() -> list[Mention]:
    out = []

    def add(paper: str, account: str, minutes_ago: float, n: int) -> None:
        source, author = account.split(":", 1)
        out.append(
            Mention(
                post_id=f"{source}-{paper}-{n}",
                arxiv_id=paper,
                created_at=T - timedelta(minutes=minutes_ago),
                source=source,
                kind="post",
                author_id=author,
                author_handle=f"h{author}",
                text=f"post {n} about {paper}",
            )
        )

    # A: x:1 five times, x:2 and x:3 twice; spread over 2 days; two posts after T.
    for n, (account, ago) in enumerate(
        [
            ("x:1", 30),
            ("x:1", 200),
            ("x:1", 400),
            ("x:2", 600),
            ("x:1", 1000),
            ("x:2", 1800),
            ("x:3", 2000),
            ("x:3", 2500),
            ("x:1", 2800),
        ]
    ):
        add(A, account, ago, n)
    add(A, "x:9", -60, 90)  # after T: invisible as of T
    add(A, "x:9", -120, 91)
    for n, account in enumerate(["bluesky:a", "bluesky:b", "bluesky:c", "bluesky:d"]):
        add(B, account, 10 + 10 * n, n)
    for n, account in enumerate(["x:4", "x:5", "x:6", "mastodon:m1", "mastodon:m2", "mastodon:m3"]):
        add(C, account, 20 * 60 + 30 * n, n)
    return out


MENTIONS = _mentions()


@pytest.fixture(scope="module")
def env(stack_endpoints: tuple[str, str]) -> Iterator[tuple[Elasticsearch, CommonSettings]]:
    settings = CommonSettings(
        namespace=f"test-{uuid.uuid4().hex[:10]}", elasticsearch_url=stack_endpoints[1]
    )
    es = Elasticsearch(**settings.elasticsearch_client_kwargs())
    ensure_indices(es, settings)
    actions: list[dict[str, Any]] = []
    for arxiv_id, meta in PAPERS.items():
        doc = metadata_document(arxiv_id, meta)
        if arxiv_id in COUNTS:
            stamps = [m.created_at for m in MENTIONS if m.arxiv_id == arxiv_id]
            doc.update(
                COUNTS[arxiv_id],
                counts_as_of=to_utc_iso(T),
                first_seen=to_utc_iso(min(stamps)),
                last_seen=to_utc_iso(max(stamps)),
            )
        actions.append({"_index": settings.indices.papers, "_id": arxiv_id, "_source": doc})
    for mention in MENTIONS:
        actions.append(
            {
                "_index": settings.indices.mentions,
                "_id": mention.document_id,
                "_source": mention_document(mention, PAPERS[mention.arxiv_id]),
            }
        )
    bulk(es, actions, refresh=True)
    yield es, settings
    es.options(ignore_status=404).indices.delete(index=f"{settings.namespace}-*")
    for template in es.indices.get_index_template(name=f"{settings.namespace}-*")[
        "index_templates"
    ]:
        es.indices.delete_index_template(name=template["name"])


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["arxiv_id"] for row in rows]


# -- trending from the papers index --------------------------------------------------------
@pytest.mark.parametrize(
    ("sort", "expected"),
    [("posts", [A, C, B]), ("accounts", [C, B, A]), ("score", [B, A, C]), ("date", [B, A, C])],
)
def test_trending_sorts(
    env: tuple[Elasticsearch, CommonSettings], sort: str, expected: list[str]
) -> None:
    es, settings = env
    rows = top_papers(es, settings, TrendingQuery(window="all", sort=sort))  # type: ignore[arg-type]
    assert ids(rows) == expected
    assert rows[0]["title"] == PAPERS[expected[0]]["title"]


def test_trending_window_category_and_paging(env: tuple[Elasticsearch, CommonSettings]) -> None:
    es, settings = env
    assert ids(top_papers(es, settings, TrendingQuery(window="1h"))) == [B, A]
    assert ids(top_papers(es, settings, TrendingQuery(category="cs.LG"))) == [A, C]
    assert ids(top_papers(es, settings, TrendingQuery(limit=1, offset=1))) == [C]
    row = top_papers(es, settings, TrendingQuery(window="24h"))[0]
    assert (row["arxiv_id"], row["posts"], row["accounts"]) == (C, 6, 6)
    assert row["posts_by_window"]["all"] == 6


# -- trending from the mentions index (as_of, source, user) -----------------------------------
def test_as_of_excludes_later_posts(env: tuple[Elasticsearch, CommonSettings]) -> None:
    es, settings = env
    rows = top_papers(es, settings, TrendingQuery(window="all", as_of=T))
    by_id = {r["arxiv_id"]: r for r in rows}
    assert by_id[A]["posts"] == 9 and by_id[A]["accounts"] == 3
    later = top_papers(es, settings, TrendingQuery(window="all", as_of=T + timedelta(hours=3)))
    assert {r["arxiv_id"]: r for r in later}[A]["posts"] == 11
    day = top_papers(es, settings, TrendingQuery(window="24h", as_of=T))
    assert [(r["arxiv_id"], r["posts"]) for r in day] == [(C, 6), (A, 5), (B, 4)]
    assert day[0]["title"] == PAPERS[C]["title"] and day[0]["as_of"] == to_utc_iso(T)
    hour = top_papers(es, settings, TrendingQuery(window="1h", as_of=T))
    assert [(r["arxiv_id"], r["posts"]) for r in hour] == [(B, 4), (A, 1)]


def test_source_filter(env: tuple[Elasticsearch, CommonSettings]) -> None:
    es, settings = env
    rows = top_papers(es, settings, TrendingQuery(source="bluesky", as_of=T))
    assert [(r["arxiv_id"], r["posts"]) for r in rows] == [(B, 4)]
    rows = top_papers(es, settings, TrendingQuery(source="x", as_of=T))
    assert [(r["arxiv_id"], r["posts"]) for r in rows] == [(A, 9), (C, 3)]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [("accounts", [C, B, A]), ("score", [B, A, C]), ("date", [B, A, C])],
)
def test_mentions_path_sorts(
    env: tuple[Elasticsearch, CommonSettings], sort: str, expected: list[str]
) -> None:
    es, settings = env
    rows = top_papers(es, settings, TrendingQuery(window="7d", sort=sort, as_of=T))  # type: ignore[arg-type]
    assert ids(rows) == expected
    if sort == "score":
        assert rows[0]["trend_score"] > rows[1]["trend_score"] > rows[2]["trend_score"] > 0


def test_mentions_path_category_and_paging(env: tuple[Elasticsearch, CommonSettings]) -> None:
    es, settings = env
    assert ids(top_papers(es, settings, TrendingQuery(category="hep-th", as_of=T))) == [B]
    assert ids(top_papers(es, settings, TrendingQuery(limit=1, offset=1, as_of=T))) == [C]
    assert ids(
        top_papers(es, settings, TrendingQuery(limit=1, offset=2, sort="date", as_of=T))
    ) == [C]


def test_per_user_trending(env: tuple[Elasticsearch, CommonSettings]) -> None:
    es, settings = env
    store_follow_list(es, settings, "alice", ["x:1", "bluesky:a", "x:1"])
    store_follow_list(es, settings, "bob", ["mastodon:m1", "mastodon:m2", "x:3"])
    alice = top_papers(es, settings, TrendingQuery(user="alice", as_of=T))
    assert [(r["arxiv_id"], r["posts"], r["accounts"]) for r in alice] == [(A, 5, 1), (B, 1, 1)]
    bob = top_papers(es, settings, TrendingQuery(user="bob", sort="accounts", as_of=T))
    assert [(r["arxiv_id"], r["accounts"]) for r in bob] == [(C, 2), (A, 1)]
    # No as_of: the window ends now, years after T, so "all" still sees everything.
    assert ids(top_papers(es, settings, TrendingQuery(user="alice"))) == [A, B]
    assert get_follow_list(es, settings, "alice")["accounts"] == ["bluesky:a", "x:1"]  # type: ignore[index]
    with pytest.raises(UnknownUserError, match="no follow list"):
        top_papers(es, settings, TrendingQuery(user="nobody"))


def test_follow_list_validation(env: tuple[Elasticsearch, CommonSettings]) -> None:
    es, settings = env
    for bad in (["12345"], ["x:"], ["X Y:1"], [""], [42]):
        with pytest.raises(ValueError, match="account"):
            store_follow_list(es, settings, "carol", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="user"):
        store_follow_list(es, settings, "  ", ["x:1"])
    assert get_follow_list(es, settings, "carol") is None


# -- search ----------------------------------------------------------------------------------------
def test_search_fields_and_boosts(env: tuple[Elasticsearch, CommonSettings]) -> None:
    es, settings = env
    rows = search_papers(es, settings, SearchQuery("attention"))
    assert ids(rows) == [A, C]  # A by title (boosted), C by abstract
    assert "**" in rows[0]["highlight"]["title"][0]
    assert ids(search_papers(es, settings, SearchQuery("lovelace"))) == [A]
    assert ids(search_papers(es, settings, SearchQuery("diphoton"))) == [D]
    assert ids(search_papers(es, settings, SearchQuery('"quantum gravity" -survey'))) == [B]
    assert ids(search_papers(es, settings, SearchQuery("graph | gravity"))) in ([C, B], [B, C])
    assert ids(search_papers(es, settings, SearchQuery("surv*"))) == [C]


def test_search_filters_and_sorts(env: tuple[Elasticsearch, CommonSettings]) -> None:
    es, settings = env
    assert ids(search_papers(es, settings, SearchQuery("attention", sort="accounts"))) == [C, A]
    assert ids(search_papers(es, settings, SearchQuery("attention", category="cs.CL"))) == [A]
    assert ids(search_papers(es, settings, SearchQuery("attention", source="mastodon"))) == [C]
    assert ids(search_papers(es, settings, SearchQuery("calculation", window="24h"))) == []
    assert ids(search_papers(es, settings, SearchQuery("a*", sort="date", limit=2))) == [B, A]


HOSTILE = [
    '"',
    "(",
    ")",
    "((((",
    "a AND (b",
    "+-",
    "|||",
    "*",
    "~",
    "title:foo",
    "\\",
    '\\"',
    "{!lucene}x",
    "AND OR NOT",
    "'; DROP TABLE papers; --",
    "<script>alert(1)</script>",
    '{"query": {"match_all": {}}}',
    "a" * 1000,
    "\u202e\ufeff\U0001d518\U0001d52b\U0001d526",
    "*:*",
    "[1 TO 2]",
    "/.*/",
    "abstract:(x OR y)^100",
    "~~~~~~~2",
    "\tx\n\r",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_search_text_never_breaks(
    env: tuple[Elasticsearch, CommonSettings], text: str
) -> None:
    es, settings = env
    rows = search_papers(es, settings, SearchQuery(text))
    assert isinstance(rows, list)
    assert all(row["arxiv_id"] in PAPERS for row in rows)


@pytest.mark.parametrize(
    "build",
    [
        lambda: SearchQuery(""),
        lambda: SearchQuery("   "),
        lambda: SearchQuery("x" * 1001),
        lambda: SearchQuery("x", sort="hot"),  # type: ignore[arg-type]
        lambda: SearchQuery("x", category='cs.LG" OR 1'),
        lambda: SearchQuery("x", source="x.y"),
        lambda: TrendingQuery(window="2h"),
        lambda: TrendingQuery(limit=0),
        lambda: TrendingQuery(offset=9999, limit=2),
        lambda: TrendingQuery(source="posts.all"),
        lambda: TrendingQuery(user=""),
    ],
)
def test_bad_queries_are_value_errors(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


# -- paper detail -------------------------------------------------------------------------------
def test_paper_detail(env: tuple[Elasticsearch, CommonSettings]) -> None:
    es, settings = env
    detail = paper_detail(es, settings, "arXiv:2401.00001v2", posts_limit=5)
    assert detail is not None
    assert detail["arxiv_id"] == A and detail["title"] == PAPERS[A]["title"]
    assert detail["posts_by_window"]["all"] == 9
    assert detail["mentions_total"] == 11
    stamps = [p["@timestamp"] for p in detail["posts"]]
    assert len(stamps) == 5 and stamps == sorted(stamps, reverse=True)
    assert detail["posts"][0]["post_id"] == "x-2401.00001-91"  # newest, after T
    assert set(detail["posts"][0]) <= {
        "post_id",
        "url",
        "source",
        "kind",
        "author_handle",
        "author_id",
        "account",
        "text",
        "@timestamp",
    }
    hours = detail["histogram"]
    assert sum(b["count"] for b in hours) == 11
    assert [b["hour"] for b in hours] == sorted(b["hour"] for b in hours)
    step = datetime.fromisoformat(hours[1]["hour"]) - datetime.fromisoformat(hours[0]["hour"])
    assert step == timedelta(hours=1)


def test_paper_detail_as_of(env: tuple[Elasticsearch, CommonSettings]) -> None:
    es, settings = env
    detail = paper_detail(es, settings, A, as_of=T)
    assert detail is not None
    assert detail["mentions_total"] == 9
    assert all(p["@timestamp"] <= to_utc_iso(T) for p in detail["posts"])
    assert detail["posts_by_window"] == {"1h": 1, "24h": 5, "7d": 9, "30d": 9, "all": 9}
    assert detail["accounts_by_window"]["all"] == 3
    assert sum(b["count"] for b in detail["histogram"]) == 9


def test_paper_detail_unknown_and_invalid(env: tuple[Elasticsearch, CommonSettings]) -> None:
    es, settings = env
    assert paper_detail(es, settings, "2402.99999") is None
    catalog_only = paper_detail(es, settings, D)
    assert catalog_only is not None and catalog_only["posts"] == []
    assert catalog_only["histogram"] == []
    with pytest.raises(ValueError, match="not an arXiv identifier"):
        paper_detail(es, settings, "not-an-id")


# -- what the dashboards read --------------------------------------------------------------
def test_keyword_twins_aggregate_without_a_terms_index(
    env: tuple[Elasticsearch, CommonSettings],
) -> None:
    """Kibana's "Top papers by title" is a terms aggregation on title.keyword, which has
    doc values only (no terms dictionary, cheaper loads); authors.keyword likewise."""
    es, settings = env
    caps = es.field_caps(index=settings.indices.papers, fields=["*.keyword", "abs_url"])["fields"]
    assert caps["title.keyword"]["keyword"]["aggregatable"] is True
    assert caps["authors.keyword"]["keyword"]["aggregatable"] is True
    response = es.search(
        index=settings.indices.papers,
        size=0,
        aggs={
            "titles": {"terms": {"field": "title.keyword", "size": 10}},
            "authors": {"terms": {"field": "authors.keyword", "size": 10}},
        },
    )
    titles = {b["key"] for b in response["aggregations"]["titles"]["buckets"]}
    authors = {b["key"] for b in response["aggregations"]["authors"]["buckets"]}
    assert titles == {meta["title"] for meta in PAPERS.values()}
    assert authors == {name for meta in PAPERS.values() for name in meta["authors"]}
    # Links are kept for display, not indexed: in _source, not searchable.
    assert caps["abs_url"]["keyword"]["aggregatable"] is False
    hit = es.get(index=settings.indices.papers, id=A)["_source"]
    assert hit["abs_url"] == f"https://arxiv.org/abs/{A}"
