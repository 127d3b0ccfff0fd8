"""The HTTP API on real Elasticsearch: the 20 seed papers with their counts and posts in a
fresh namespace, queried through FastAPI's TestClient and through a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from tests.webdata import (
    EVIL_PAPER,
    EVIL_TEXT,
    SEED_AS_OF,
    seed_documents,
    seed_papers,
    seeded_namespace,
)
from trending_arxiv.search.follows import store_follow_list
from trending_arxiv.settings import CommonSettings
from trending_arxiv.web.api import create_api
from trending_arxiv.web.server import BackgroundServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[Elasticsearch, CommonSettings]]:
    with seeded_namespace("apitest") as pair:
        yield pair


@pytest.fixture(scope="module")
def client(seeded: tuple[Elasticsearch, CommonSettings]) -> Iterator[TestClient]:
    es, settings = seeded
    with TestClient(create_api(settings, es), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def documents() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return seed_documents()


def _ids(body: dict[str, Any]) -> list[str]:
    return [row["arxiv_id"] for row in body["papers"]]


def test_sorted_by_date_is_the_seed_page(client: TestClient) -> None:
    response = client.get("/api/trending", params={"window": "all", "sort": "date", "limit": 20})
    assert response.status_code == 200, response.text
    rows = response.json()["papers"]
    seed = seed_papers()
    assert [r["arxiv_id"] for r in rows] == [p["arxiv_id"] for p in seed]
    assert [r["posts"] for r in rows] == [p["seed_posts"] for p in seed]
    assert [r["abstract"] for r in rows] == [p["abstract"] for p in seed]
    assert all(r["abs_url"] == f"https://arxiv.org/abs/{r['arxiv_id']}" for r in rows)


def test_windows_rank_by_the_window_counts(client: TestClient, documents: tuple) -> None:
    papers, _ = documents
    for window in ("1h", "24h", "7d", "30d", "all"):
        expected = sorted(
            ((p["posts"][window], p["arxiv_id"]) for p in papers if p["posts"][window] > 0),
            key=lambda pair: (-pair[0], pair[1]),
        )
        body = client.get("/api/trending", params={"window": window, "limit": 100}).json()
        assert [(r["posts"], r["arxiv_id"]) for r in body["papers"]] == expected, window
    # the 24h window really is narrower than all time on this data
    assert len(client.get("/api/trending?window=24h&limit=100").json()["papers"]) < 20


def test_paging_and_category(client: TestClient, documents: tuple) -> None:
    first = _ids(client.get("/api/trending?window=all&limit=5").json())
    second = _ids(client.get("/api/trending?window=all&limit=5&offset=5").json())
    everything = _ids(client.get("/api/trending?window=all&limit=10").json())
    assert first + second == everything
    papers, _ = documents
    cl = {p["arxiv_id"] for p in papers if "cs.CL" in p["categories"]}
    got = _ids(client.get("/api/trending?window=all&category=cs.CL&limit=100").json())
    assert set(got) == cl and len(got) == len(cl)
    cats = client.get("/api/categories").json()["categories"]
    assert {"category": "cs.CL", "papers": len(cl)} in cats


def test_as_of_and_source_count_from_mentions(client: TestClient, documents: tuple) -> None:
    _, mentions = documents
    body = client.get(
        "/api/trending",
        params={
            "window": "all",
            "source": "bluesky",
            "as_of": "2016-02-09T00:00:00Z",
            "limit": 100,
        },
    ).json()
    expected: dict[str, int] = {}
    for m in mentions:
        if m["source"] == "bluesky":
            expected[m["arxiv_id"]] = expected.get(m["arxiv_id"], 0) + 1
    assert {r["arxiv_id"]: r["posts"] for r in body["papers"]} == expected
    assert body["as_of"] == "2016-02-09T00:00:00Z"
    early = client.get("/api/trending?window=all&as_of=2015-12-01T00:00:00&limit=100").json()
    early_expected = {m["arxiv_id"] for m in mentions if m["@timestamp"] <= "2015-12-01T00:00:00Z"}
    assert set(_ids(early)) == early_expected and early_expected


def test_search_finds_by_abstract_title_and_author(client: TestClient) -> None:
    slime = client.get("/api/search", params={"q": "slime mold"}).json()
    assert _ids(slime)[0] == "1601.02712"
    babai = client.get("/api/search", params={"q": "Graph Isomorphism"}).json()
    assert _ids(babai)[0] == "1512.03547"
    nothing = client.get("/api/search", params={"q": "zzzyzx quux"}).json()
    assert nothing["papers"] == []
    # search text is data, not query syntax
    assert client.get("/api/search", params={"q": 'a" OR (b AND'}).status_code == 200


def test_paper_detail_has_posts_and_histogram(client: TestClient, documents: tuple) -> None:
    _, mentions = documents
    mine = [m for m in mentions if m["arxiv_id"] == "1601.04589"]
    detail = client.get("/api/papers/arXiv:1601.04589v1?posts_limit=5").json()
    assert detail["arxiv_id"] == "1601.04589"
    assert detail["mentions_total"] == len(mine)
    newest = sorted(mine, key=lambda m: m["@timestamp"], reverse=True)[:5]
    assert [p["post_id"] for p in detail["posts"]] == [m["post_id"] for m in newest]
    assert all(p["url"].startswith("https://") for p in detail["posts"])
    assert sum(b["count"] for b in detail["histogram"]) == len(mine)
    evil = client.get(f"/api/papers/{EVIL_PAPER}").json()
    assert evil["posts"][0]["text"] == EVIL_TEXT  # stored and returned verbatim (JSON)
    missing = client.get("/api/papers/2101.00001")
    assert missing.status_code == 404 and "2101.00001" in missing.json()["error"]


def test_sparklines_sum_to_recent_mentions(client: TestClient, documents: tuple) -> None:
    _, mentions = documents
    body = client.get("/api/sparklines", params={"ids": "1602.02410,1511.07916", "hours": 48})
    series = body.json()["series"]
    for arxiv_id in ("1602.02410", "1511.07916"):
        counts = series[arxiv_id]["counts"]
        assert len(counts) == 48
        end = series[arxiv_id]["end"]
        times = sorted(m["@timestamp"] for m in mentions if m["arxiv_id"] == arxiv_id)
        assert end[:13] == times[-1][:13]  # ends at the hour of the last mention
        assert counts[-1] > 0
        assert sum(counts) <= len(times)
    big = series["1602.02410"]["counts"]
    assert sum(big) == sum(1 for m in mentions if m["arxiv_id"] == "1602.02410")


def test_user_trending_uses_the_follow_list(
    client: TestClient, seeded: tuple[Elasticsearch, CommonSettings], documents: tuple
) -> None:
    es, settings = seeded
    _, mentions = documents
    followed = sorted({m["account"] for m in mentions if m["arxiv_id"] == "1601.04589"})[:3]
    store_follow_list(es, settings, "smerity", followed)
    body = client.get("/api/users/smerity/trending?window=all&limit=100").json()
    expected: dict[str, int] = {}
    for m in mentions:
        if m["account"] in followed:
            expected[m["arxiv_id"]] = expected.get(m["arxiv_id"], 0) + 1
    assert {r["arxiv_id"]: r["posts"] for r in body["papers"]} == expected
    assert body["user"] == "smerity"
    unknown = client.get("/api/users/nobody/trending")
    assert unknown.status_code == 404 and "nobody" in unknown.json()["error"]
    # The query-string form says the same (an unknown user is not a malformed request).
    unknown = client.get("/api/trending?user=nobody")
    assert unknown.status_code == 404 and "nobody" in unknown.json()["error"]


def test_real_server_health_metrics_and_page(seeded: tuple[Elasticsearch, CommonSettings]) -> None:
    _, settings = seeded
    with BackgroundServer(settings) as server, httpx.Client(base_url=server.url) as http:
        health = http.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        top = http.get("/api/trending?window=all&limit=1").json()["papers"][0]
        assert top["arxiv_id"] == "1602.02410" and top["posts"] == 142
        assert "Trending arXiv" in http.get("/").text
        metrics = http.get("/metrics").text
        assert 'route="/api/trending",status="200"' in metrics
    assert SEED_AS_OF.year == 2016
