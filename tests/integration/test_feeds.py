"""Atom/RSS feeds and the Bluesky feed generator on the demo's data: the bundled seed sample
replayed through the real pipeline (Kafka -> Faust worker -> sink -> Elasticsearch), then
served by the API (FastAPI's TestClient on the real Elasticsearch)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest
from elasticsearch import Elasticsearch, helpers
from fastapi.testclient import TestClient
from kafka import KafkaAdminClient
from rich.console import Console

from producers.replay import replay
from producers.settings import ProducerSettings
from sinks.indices import ensure_indices
from tests.feedtext import html_text
from tests.integration.pipeline import start_pipeline
from tests.lexicon import DESCRIBE, SKELETON, validate
from tests.webdata import seed_papers
from trending_arxiv.core.documents import mention_document
from trending_arxiv.core.models import Mention, parse_utc
from trending_arxiv.core.simulate import SimulationResult, read_lines, simulate
from trending_arxiv.core.skyfeed import SkeletonCursor
from trending_arxiv.demo import bundled_sample_path, wait_until_counted
from trending_arxiv.search.follows import store_follow_list
from trending_arxiv.search.queries import stream_time
from trending_arxiv.search.skyfeed import bluesky_posts
from trending_arxiv.web.api import create_api
from trending_arxiv.web.feed_settings import FeedDefinition, FeedSettings

pytestmark = pytest.mark.integration

PUBLISHER = "did:plc:trendingarxivtest0000001"
HOST = "feeds.example.org"
LAST_POST = datetime(2016, 2, 9, 11, 34, 52, tzinfo=UTC)  # the seed sample's last post
FEEDS = [
    FeedDefinition(name="all-time", display_name="Trending arXiv: all", window="all"),
    FeedDefinition(name="cs-cl", display_name="cs.CL", window="all", category="cs.CL"),
    FeedDefinition(name="last-day", display_name="24h", window="24h", sort="accounts"),
]


def _feed(name: str) -> str:
    return f"at://{PUBLISHER}/app.bsky.feed.generator/{name}"


def _drop_namespace(kafka: str, es: Elasticsearch, name: str) -> None:
    es.options(ignore_status=404).indices.delete(index=f"{name}-*", expand_wildcards="all")
    for template in es.indices.get_index_template(name=f"{name}-*").get("index_templates", []):
        es.indices.delete_index_template(name=template["name"])
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        ours = [t for t in admin.list_topics() if t.startswith(name)]
        if ours:
            admin.delete_topics(ours)
    finally:
        admin.close()


@pytest.fixture(scope="module")
def reference() -> SimulationResult:
    return simulate(read_lines([bundled_sample_path()]))


@pytest.fixture(scope="module")
def demo(
    stack_endpoints: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    reference: SimulationResult,
) -> Iterator[tuple[Elasticsearch, FeedSettings]]:
    """The seed sample replayed through the real worker and sink into a fresh namespace."""
    kafka, es_url = stack_endpoints
    namespace = f"feedtest-{uuid.uuid4().hex[:8]}"
    settings = FeedSettings(
        kafka_bootstrap_servers=kafka, elasticsearch_url=es_url, namespace=namespace,
        feeds_hostname=HOST, feeds_publisher_did=PUBLISHER, feeds=FEEDS,
    )  # fmt: skip
    es = Elasticsearch(es_url)
    # Stream time is a watermark: while the replay is read it is the slowest partition's
    # newest post, and once every partition is idle the count refresh brings the papers up
    # to the last post (and on by the idle wall-clock time). The pipeline stops once that
    # happened, so the stream's time the tests check is frozen.
    processes = start_pipeline(
        namespace, kafka, es_url, tmp_path_factory.mktemp("feeds"),
        TRENDING_COUNTS_REFRESH_SECONDS="1",
    )  # fmt: skip
    try:
        try:
            producer = ProducerSettings(kafka_bootstrap_servers=kafka, namespace=namespace)
            assert replay([bundled_sample_path()], producer, progress=False).sent == 203
            wait_until_counted(
                settings, reference.posts_by_paper, len(reference.mention_ids), processes,
                timeout=240, console=Console(quiet=True),
            )  # fmt: skip
            deadline = time.monotonic() + 120
            while (stream_time(es, settings) or LAST_POST) < LAST_POST:
                assert time.monotonic() < deadline, "stream time never reached the last post"
                time.sleep(0.5)
        finally:
            processes.stop()
        yield es, settings
    finally:
        _drop_namespace(kafka, es, namespace)
        es.close()


@pytest.fixture(scope="module")
def client(demo: tuple[Elasticsearch, FeedSettings]) -> Iterator[TestClient]:
    es, settings = demo
    with TestClient(create_api(settings, es), raise_server_exceptions=False) as test_client:
        yield test_client


def _seed_bluesky_posts(reference: SimulationResult) -> dict[str, list[tuple[datetime, str]]]:
    """Each paper's Bluesky posts (time, at:// URI), read from the raw sample itself."""
    created: dict[str, datetime] = {}
    for line in read_lines([bundled_sample_path()]):
        event = json.loads(line)
        commit = event.get("commit") if isinstance(event, dict) else None
        if not commit or "did" not in event:
            continue
        assert commit["collection"] == "app.bsky.feed.post"  # the sample has no reposts
        uri = f"at://{event['did']}/{commit['collection']}/{commit['rkey']}"
        created[uri] = parse_utc(commit["record"]["createdAt"])
    posts: dict[str, list[tuple[datetime, str]]] = {}
    for mention_id in reference.mention_ids:
        post_id, _, arxiv_id = mention_id.partition("|")
        if post_id.startswith("at://"):
            posts.setdefault(arxiv_id, []).append((created[post_id], post_id))
    return posts


def _ids(body: dict[str, Any]) -> list[str]:
    return [row["arxiv_id"] for row in body["papers"]]


# -- Atom and RSS --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["atom", "rss"])
def test_feeds_list_the_seed_papers_in_the_page_order(client: TestClient, kind: str) -> None:
    seed = seed_papers()
    page = client.get("/api/trending", params={"window": "all", "sort": "date", "limit": 20})
    rows = page.json()["papers"]
    assert _ids(page.json()) == [p["arxiv_id"] for p in seed]  # the page's default view
    response = client.get(f"/feeds/trending.{kind}", params={"window": "all", "sort": "date"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(f"application/{kind}+xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [e.id for e in parsed.entries] == [f"arxiv:{p['arxiv_id']}" for p in seed]
    for entry, paper, row in zip(parsed.entries, seed, rows, strict=True):
        assert entry.title == paper["title"]
        assert entry.link == f"https://arxiv.org/abs/{paper['arxiv_id']}"
        counts = (
            f"Captured posts and reposts: {paper['seed_posts']}, by {row['accounts']} "
            f"account{'s' if row['accounts'] != 1 else ''} of all time"
        )
        if kind == "atom":
            assert entry.content[0].value == f"{counts}.\n\n{paper['abstract']}"
        else:  # HTML: an abstract's "<Natural Language ...>" must come back as text
            assert html_text(entry.summary) == (f"{counts}.\n\n{paper['abstract']}", ["p", "p"])
        when = entry.updated_parsed if kind == "atom" else entry.published_parsed
        assert datetime(*when[:6]).replace(tzinfo=UTC) == parse_utc(row["counts_as_of"]).replace(
            microsecond=0
        )
    if kind == "atom":
        first = parsed.entries[0]
        assert [a.name for a in first.authors] == seed[0]["authors"]
        assert f"http://testserver/papers/{seed[0]['arxiv_id']}" in [
            link.href for link in first.links
        ]


@pytest.mark.parametrize(
    "params",
    [
        {"window": "all", "sort": "posts", "limit": 7},
        {"window": "24h", "sort": "accounts"},
        {"window": "all", "sort": "score", "category": "cs.CL"},
        # the mentions path (a source, a moment): as of the stream's last post
        {"window": "7d", "sort": "posts", "source": "bluesky", "as_of": "2016-02-09T11:34:52Z"},
        # "unusual for its field" (trending_arxiv.search.field_ranking)
        {"window": "all", "sort": "field"},
    ],
)
def test_feed_order_is_the_api_order(client: TestClient, params: dict[str, Any]) -> None:
    expected = _ids(client.get("/api/trending", params=params).json())
    assert expected
    for kind in ("atom", "rss"):
        parsed = feedparser.parse(client.get(f"/feeds/trending.{kind}", params=params).content)
        assert not parsed.bozo
        assert [e.id.removeprefix("arxiv:") for e in parsed.entries] == expected, (kind, params)


def test_follow_list_feed(client: TestClient, demo: tuple[Elasticsearch, FeedSettings]) -> None:
    es, settings = demo
    hits = es.search(
        index=settings.indices.mentions, query={"term": {"arxiv_id": "1601.04589"}}, size=3,
        sort=[{"post_id": "asc"}], source_includes=["account"],
    )["hits"]["hits"]  # fmt: skip
    store_follow_list(es, settings, "smerity", [h["_source"]["account"] for h in hits])
    params = {"window": "all", "user": "smerity", "as_of": "2016-02-09T11:34:52Z"}
    expected = _ids(client.get("/api/trending", params=params).json())
    assert "1601.04589" in expected
    parsed = feedparser.parse(client.get("/feeds/trending.rss", params=params).content)
    assert [e.id.removeprefix("arxiv:") for e in parsed.entries] == expected
    assert "posted by accounts smerity follows" in parsed.feed.title


def test_search_feed(client: TestClient) -> None:
    expected = _ids(client.get("/api/search", params={"q": "slime mold"}).json())
    parsed = feedparser.parse(client.get("/feeds/trending.atom?q=slime+mold").content)
    assert [e.id.removeprefix("arxiv:") for e in parsed.entries] == expected
    assert expected[0] == "1601.02712"
    assert parsed.feed.title == "Trending arXiv: all time, most relevant, matching “slime mold”"


def test_readers_poll_cheaply(client: TestClient, demo: tuple[Elasticsearch, FeedSettings]) -> None:
    url = "/feeds/trending.atom?window=all&sort=posts"
    first = client.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    # the stream's time: the last post (and the idle seconds the refresh added to it)
    now = stream_time(demo[0], demo[1])
    assert now is not None and now >= LAST_POST
    assert modified == now.strftime("%a, %d %b %Y %H:%M:%S GMT")
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    older = client.get(url, headers={"If-Modified-Since": "Mon, 08 Feb 2016 00:00:00 GMT"})
    assert older.status_code == 200 and older.content == first.content
    changed = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200
    other_view = client.get("/feeds/trending.atom?window=all&sort=date")
    assert other_view.headers["etag"] != etag
    assert client.get("/feeds/trending.rss?window=all&sort=posts").headers["etag"] != etag


def test_feed_errors_are_clear(client: TestClient) -> None:
    bad_window = client.get("/feeds/trending.atom?window=2d")
    assert bad_window.status_code == 422 and "window" in bad_window.json()["error"]
    relevance = client.get("/feeds/trending.rss?sort=relevance")
    assert relevance.status_code == 422 and "needs q" in relevance.json()["error"]
    mixed = client.get("/feeds/trending.atom?q=lstm&user=alice")
    assert mixed.status_code == 422
    field_search = client.get("/feeds/trending.atom?q=lstm&sort=field")
    assert field_search.status_code == 422 and "sort=field" in field_search.json()["error"]
    unknown_user = client.get("/feeds/trending.atom?user=nobody")
    assert unknown_user.status_code == 404 and "nobody" in unknown_user.json()["error"]
    assert client.get("/feeds/trending.atom?limit=101").status_code == 422
    assert client.get("/feeds/trending.atom?as_of=yesterday").status_code == 422


# -- the Bluesky feed generator --------------------------------------------------------------
def _scroll(client: TestClient, feed: str, limit: int) -> tuple[list[list[str]], list[str]]:
    """Every page of a feed (post URIs per page) and the cursors that led there."""
    pages: list[list[str]] = []
    cursors: list[str] = []
    params: dict[str, Any] = {"feed": feed, "limit": limit}
    while True:
        response = client.get("/xrpc/app.bsky.feed.getFeedSkeleton", params=params)
        assert response.status_code == 200, response.text
        page = validate(response.json(), SKELETON)
        pages.append([item.post for item in page.feed])
        assert len(pages[-1]) <= limit
        if page.cursor is None:
            return pages, cursors
        assert len(pages) < 20, "the cursor never ends"
        cursors.append(page.cursor)
        params["cursor"] = page.cursor


def test_skeleton_pages_through_every_bluesky_linked_paper_once(
    client: TestClient, reference: SimulationResult, demo: tuple[Elasticsearch, FeedSettings]
) -> None:
    bluesky = _seed_bluesky_posts(reference)
    assert len(bluesky) == 6 and len(bluesky["1602.02410"]) == 3
    ranking = _ids(client.get("/api/trending?window=all&sort=posts&limit=100").json())
    expected = [min(bluesky[i])[1] for i in ranking if i in bluesky]  # the earliest post
    pages, cursors = _scroll(client, _feed("all-time"), limit=3)
    assert [uri for page in pages for uri in page] == expected
    assert [len(page) for page in pages[:2]] == [3, 3] and all(p == [] for p in pages[2:])
    # the cursor holds the stream's time: the last post (plus the refresh's idle seconds)
    assert SkeletonCursor.decode(cursors[0]).as_of == stream_time(demo[0], demo[1])
    # the category feed: the same ranking, cs.CL only
    cl_ranking = _ids(client.get("/api/trending?window=all&category=cs.CL&limit=100").json())
    cl_pages, _ = _scroll(client, _feed("cs-cl"), limit=3)
    cl_expected = [min(bluesky[i])[1] for i in cl_ranking if i in bluesky]
    assert [u for p in cl_pages for u in p] == cl_expected
    assert len(cl_ranking) < len(ranking)


def test_skeleton_of_a_window_ranks_as_the_api_does_at_its_moment(
    client: TestClient, reference: SimulationResult
) -> None:
    bluesky = _seed_bluesky_posts(reference)
    pages, _ = _scroll(client, _feed("last-day"), limit=2)
    as_of = "2016-02-09T11:34:52Z"
    ranking = _ids(
        client.get(f"/api/trending?window=24h&sort=accounts&as_of={as_of}&limit=100").json()
    )
    expected = [min(bluesky[i])[1] for i in ranking if i in bluesky]
    assert [u for p in pages for u in p] == expected
    assert 0 < len(expected) < len(bluesky)  # the window leaves some out


def test_a_scroll_keeps_its_ranking_while_posts_arrive(
    client: TestClient, demo: tuple[Elasticsearch, FeedSettings], reference: SimulationResult
) -> None:
    es, settings = demo
    first = client.get(
        "/xrpc/app.bsky.feed.getFeedSkeleton", params={"feed": _feed("all-time"), "limit": 3}
    ).json()
    # A Bluesky post of a paper the sample has none for arrives after the first page.
    late = Mention(
        post_id="at://did:plc:latecomer00000000000000/app.bsky.feed.post/3dfzzzzzzzzzz",
        arxiv_id="1601.02712", created_at=datetime(2016, 2, 9, 12, tzinfo=UTC),
        source="bluesky", kind="post", author_id="did:plc:latecomer00000000000000",
        text="late https://arxiv.org/abs/1601.02712",
    )  # fmt: skip
    assert "1601.02712" not in _seed_bluesky_posts(reference)
    es.index(index=settings.indices.mentions, id=late.document_id,
             document=mention_document(late, None), refresh=True)  # fmt: skip
    try:
        rest = client.get(
            "/xrpc/app.bsky.feed.getFeedSkeleton",
            params={"feed": _feed("all-time"), "limit": 100, "cursor": first["cursor"]},
        ).json()
        scrolled = [item["post"] for item in first["feed"] + rest["feed"]]
        assert late.post_id not in scrolled and len(scrolled) == 6
        # as of its own moment, the mentions index now ranks the late post's paper too
        with_late = client.get(
            "/api/trending?window=all&as_of=2016-02-09T12:00:00Z&source=bluesky&limit=100"
        ).json()
        assert "1601.02712" in _ids(with_late)
    finally:
        es.delete(index=settings.indices.mentions, id=late.document_id, refresh=True)


def test_describe_and_did_document(client: TestClient) -> None:
    described = client.get("/xrpc/app.bsky.feed.describeFeedGenerator")
    assert described.status_code == 200
    body = validate(described.json(), DESCRIBE)
    assert body.did == f"did:web:{HOST}"
    assert [f.uri for f in body.feeds] == [_feed(f.name) for f in FEEDS]
    document = client.get("/.well-known/did.json").json()
    assert document["id"] == f"did:web:{HOST}"
    assert document["service"][0]["serviceEndpoint"] == f"https://{HOST}"
    assert document["service"][0]["type"] == "BskyFeedGenerator"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"feed": _feed("nope")}, "UnknownFeed"),
        ({"feed": "at://did:plc:someoneelse/app.bsky.feed.generator/all-time"}, "UnknownFeed"),
        ({"feed": f"at://{PUBLISHER}/app.bsky.feed.post/all-time"}, "UnknownFeed"),
        ({"feed": "all-time"}, "InvalidRequest"),
        ({}, "InvalidRequest"),
        ({"feed": _feed("all-time"), "limit": "0"}, "InvalidRequest"),
        ({"feed": _feed("all-time"), "limit": "101"}, "InvalidRequest"),
        ({"feed": _feed("all-time"), "limit": "ten"}, "InvalidRequest"),
        ({"feed": _feed("all-time"), "cursor": "garbage"}, "InvalidRequest"),
        ({"feed": _feed("all-time"), "cursor": "1454976000000::99999"}, "InvalidRequest"),
        ({"feed": _feed("all-time"), "cursor": "999999999999999::1"}, "InvalidRequest"),
    ],
)
def test_skeleton_errors_are_400s(client: TestClient, params: dict[str, str], error: str) -> None:
    response = client.get("/xrpc/app.bsky.feed.getFeedSkeleton", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error and response.json()["message"]


def test_real_server_serves_the_feeds(demo: tuple[Elasticsearch, FeedSettings]) -> None:
    """Through uvicorn: what a reader or Bluesky's feed service would fetch."""
    import httpx

    from trending_arxiv.web.server import BackgroundServer

    _, settings = demo
    with BackgroundServer(settings) as server, httpx.Client(base_url=server.url) as http:
        atom = http.get("/feeds/trending.atom?window=all&sort=date")
        parsed = feedparser.parse(atom.content)
        assert parsed.entries[0].link == "https://arxiv.org/abs/1602.02410"
        assert parsed.feed.links[0].href.startswith(f"{server.url}/feeds/trending.atom?")
        etag = atom.headers["etag"]
        assert http.get(atom.url, headers={"If-None-Match": etag}).status_code == 304
        head = http.head(atom.url)
        assert head.status_code == 200 and head.headers["etag"] == etag and head.content == b""
        skeleton = http.get(
            "/xrpc/app.bsky.feed.getFeedSkeleton", params={"feed": _feed("all-time")}
        )
        assert len(validate(skeleton.json(), SKELETON).feed) == 6
        page = http.get("/").text
        assert 'type="application/atom+xml"' in page and "feeds/trending.rss" in page


def test_the_post_shown_is_the_most_reposted_else_the_earliest(
    namespace: str, stack_endpoints: tuple[str, str]
) -> None:
    """Reposts joined to their subjects, as the stream writes them, decide the post."""
    kafka, es_url = stack_endpoints
    settings = FeedSettings(
        kafka_bootstrap_servers=kafka, elasticsearch_url=es_url, namespace=namespace
    )
    es = Elasticsearch(es_url)
    ensure_indices(es, settings)
    t0 = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def post(did: str, rkey: str) -> str:
        return f"at://did:plc:{did}/app.bsky.feed.post/{rkey}"

    first, reposted, deleted = (
        post("aaaa", "3kaaaaaaaaaaa"),
        post("bbbb", "3kbbbbbbbbbbb"),
        post("cccc", "3kccccccccccc"),
    )
    mentions: list[Mention] = []

    def add(arxiv_id: str, post_id: str, minutes: int, kind: str = "post", ref: str | None = None,
            source: str = "bluesky") -> None:  # fmt: skip
        author = post_id.split("/")[2] if source == "bluesky" else "12345"
        mentions.append(Mention(
            post_id=post_id, arxiv_id=arxiv_id, created_at=t0 + timedelta(minutes=minutes),
            source=source, kind=kind, author_id=author, text="", ref_post_id=ref,
        ))  # fmt: skip

    def repost(arxiv_id: str, subject: str, who: str, minutes: int) -> None:
        add(arxiv_id, f"at://did:plc:{who}/app.bsky.feed.repost/3kr{who}{minutes:04d}", minutes,
            kind="repost", ref=subject)  # fmt: skip

    add("2603.00001", first, 0)
    add("2603.00001", reposted, 60)
    repost("2603.00001", reposted, "r1", 61)
    repost("2603.00001", reposted, "r2", 62)
    repost("2603.00001", first, "r3", 63)
    repost("2603.00001", first, "r4", 600)  # after the moment asked for first
    repost("2603.00001", first, "r5", 601)
    add("2603.00002", "1900000000000000001", -30, source="x")  # earlier, but on X
    add("2603.00002", post("dddd", "3kdddddddddd2"), 20)
    add("2603.00002", post("eeee", "3keeeeeeeeee1"), 10)
    add("2603.00003", "1900000000000000002", 5, source="x")  # no Bluesky post at all
    # A deleted post: its mention is gone, its reposts stay credited (the ledger's rule).
    for who in ("r6", "r7", "r8", "r9"):
        repost("2603.00001", deleted, who, 90)
    repost("2603.00004", deleted, "r6", 30)
    helpers.bulk(es, [
        {"_index": settings.indices.mentions, "_id": m.document_id,
         "_source": mention_document(m, None)} for m in mentions
    ], refresh="wait_for")  # fmt: skip
    ids = ["2603.00001", "2603.00002", "2603.00003", "2603.00004"]
    try:
        assert bluesky_posts(es, settings, ids, t0 + timedelta(hours=2)) == {
            "2603.00001": reposted,  # 2 reposts against 1 (the deleted post's 4 don't count)
            "2603.00002": post("eeee", "3keeeeeeeeee1"),  # no reposts: the earliest
        }
        later = bluesky_posts(es, settings, ids, t0 + timedelta(hours=11))
        assert later["2603.00001"] == first  # now 3 reposts against 2
        assert bluesky_posts(es, settings, ids, t0 + timedelta(minutes=15)) == {
            "2603.00001": first,
            "2603.00002": post("eeee", "3keeeeeeeeee1"),
        }
    finally:
        es.close()
