"""The feeds' answers that need no data: parameter errors (4xx, XRPC errors for the feed
generator), an unreachable Elasticsearch (503, never 500), the DID document and the feed list.

Elasticsearch is a real client pointed at a loopback port nobody listens on (an outage);
nothing is mocked.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from tests.lexicon import DESCRIBE, validate
from trending_arxiv.web.api import create_api
from trending_arxiv.web.feed_settings import DEFAULT_FEEDS, FeedSettings

PUBLISHER = "did:plc:unitfeedpublisher000001"
FEED = f"at://{PUBLISHER}/app.bsky.feed.generator/trending-24h"
SKELETON = "/xrpc/app.bsky.feed.getFeedSkeleton"


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = FeedSettings(
        elasticsearch_url=f"http://127.0.0.1:{_dead_port()}", namespace="unit-feeds",
        feeds_hostname="feeds.example.org", feeds_publisher_did=PUBLISHER,
    )  # fmt: skip
    es = Elasticsearch(settings.elasticsearch_url, request_timeout=2, max_retries=0)
    with TestClient(create_api(settings, es), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"feed": f"at://{PUBLISHER}/app.bsky.feed.generator/nope"}, "UnknownFeed"),
        ({"feed": "at://did:plc:other/app.bsky.feed.generator/trending-24h"}, "UnknownFeed"),
        ({"feed": "not a uri"}, "InvalidRequest"),
        ({"feed": ""}, "InvalidRequest"),
        ({"feed": FEED, "limit": "-1"}, "InvalidRequest"),
        ({"feed": FEED, "limit": "1e2"}, "InvalidRequest"),
        ({"feed": FEED, "cursor": "1454976000000::x"}, "InvalidRequest"),
        ({"feed": FEED, "cursor": "<script>"}, "InvalidRequest"),
    ],
)
def test_skeleton_parameter_errors_are_xrpc_400s(
    client: TestClient, params: dict[str, str], error: str
) -> None:
    response = client.get(SKELETON, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert isinstance(response.json()["message"], str) and response.json()["message"]


def test_an_outage_is_a_503_never_a_500(client: TestClient) -> None:
    skeleton = client.get(SKELETON, params={"feed": FEED, "limit": "3"})
    assert skeleton.status_code == 503
    assert skeleton.json()["error"] == "UpstreamFailure"
    assert "unreachable" in skeleton.json()["message"]
    for kind in ("atom", "rss"):
        feed = client.get(f"/feeds/trending.{kind}?window=7d")
        assert feed.status_code == 503 and "unreachable" in feed.json()["error"]


@pytest.mark.parametrize(
    "query",
    ["window=2d", "sort=newest", "limit=0", "limit=101", "source=myspace", "category=%3Cb%3E",
     "as_of=not-a-date", "sort=relevance", "q=x&as_of=2016-01-01", "q=%20%20"],
)  # fmt: skip
def test_feed_parameter_errors_are_422s(client: TestClient, query: str) -> None:
    response = client.get(f"/feeds/trending.atom?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["error"]


def test_did_document_and_feed_list_need_no_data(client: TestClient) -> None:
    document = client.get("/.well-known/did.json").json()
    assert document["id"] == "did:web:feeds.example.org"
    described = validate(client.get("/xrpc/app.bsky.feed.describeFeedGenerator").json(), DESCRIBE)
    assert [f.uri for f in described.feeds] == [
        f"at://{PUBLISHER}/app.bsky.feed.generator/{feed.name}" for feed in DEFAULT_FEEDS
    ]


def test_feeds_are_in_the_api_docs(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/feeds/trending.atom", "/feeds/trending.rss",
                 "/xrpc/app.bsky.feed.getFeedSkeleton",
                 "/xrpc/app.bsky.feed.describeFeedGenerator", "/.well-known/did.json"):  # fmt: skip
        assert "get" in paths[path], path
    parameters = {p["name"] for p in paths["/feeds/trending.atom"]["get"]["parameters"]}
    assert parameters == {"window", "sort", "category", "q", "user", "source", "as_of", "limit"}
