"""The API's answers that need no data: validation (4xx), an unreachable Elasticsearch
(503, never 500), health, metrics and the static page.

Elasticsearch here is a real client pointed at a loopback port nobody listens on, which is
what an outage looks like; nothing is mocked.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from trending_arxiv.core.vocabulary import MAX_PAGE_SIZE, MAX_SEARCH_TEXT
from trending_arxiv.settings import CommonSettings
from trending_arxiv.web.api import STATIC_DIR, create_api


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connections are refused


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = CommonSettings(
        elasticsearch_url=f"http://127.0.0.1:{_dead_port()}", namespace="unit-api"
    )
    es = Elasticsearch(settings.elasticsearch_url, request_timeout=2, max_retries=0)
    with TestClient(create_api(settings, es), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/api/trending?window=2h", 422, "window"),
        ("/api/trending?window=", 422, "window"),
        ("/api/trending?sort=random", 422, "sort"),
        ("/api/trending?limit=100000", 422, "limit"),
        (f"/api/trending?limit={MAX_PAGE_SIZE + 1}", 422, "limit"),
        ("/api/trending?limit=0", 422, "limit"),
        ("/api/trending?limit=ten", 422, "limit"),
        ("/api/trending?offset=-1", 422, "offset"),
        ("/api/trending?offset=9990&limit=50", 400, "offset + limit"),
        ("/api/trending?as_of=yesterday", 422, "as_of"),
        ("/api/trending?as_of=2016-13-45T99:00:00Z", 422, "as_of"),
        ("/api/trending?category=cs.CL%20OR%201", 422, "category"),
        ("/api/trending?source=myspace", 422, "source"),
        ("/api/search", 422, "q"),
        ("/api/search?q=", 422, "q"),
        ("/api/search?q=%20%20", 422, "q"),
        ("/api/search?q=" + "a" * (MAX_SEARCH_TEXT + 1), 422, "q"),
        ("/api/search?q=rnn&sort=hot", 422, "sort"),
        ("/api/papers/not-a-paper", 422, "arXiv"),
        ("/api/papers/1602.02410?posts_limit=5000", 422, "posts_limit"),
        ("/api/sparklines?ids=1602.02410,nope", 422, "nope"),
        ("/api/sparklines?ids=1602.02410&hours=100000", 422, "hours"),
        ("/api/users/smerity/trending?window=5m", 422, "window"),
        ("/api/nothing-here", 404, "no API endpoint"),
    ],
)
def test_bad_parameters_are_4xx_json_with_a_message(
    client: TestClient, path: str, status: int, words: str
) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str)
    assert words.lower() in body["error"].lower()


@pytest.mark.parametrize(
    "path",
    [
        "/api/trending",
        "/api/trending?window=7d&sort=date&category=cs.CL",
        "/api/trending?as_of=2016-02-09T00:00:00Z&source=x",
        "/api/search?q=recurrent",
        "/api/papers/1602.02410",
        "/api/papers/arXiv:1602.02410v2",
        "/api/users/smerity/trending",
        "/api/sparklines?ids=1602.02410",
        "/api/categories",
    ],
)
def test_unreachable_elasticsearch_is_503_not_500(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 503, response.text
    assert "unreachable" in response.json()["error"]
    assert "127.0.0.1" in response.json()["error"]


def test_health_reports_elasticsearch_down(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_metrics_count_requests_by_route_and_status(client: TestClient) -> None:
    client.get("/api/trending?window=2h")
    client.get("/api/trending?window=2h")
    text = client.get("/metrics").text
    found = re.search(
        r'trending_api_requests_total\{method="GET",route="/api/trending",status="422"\} (\d+)',
        text,
    )
    assert found and float(found.group(1)) >= 2
    assert "trending_api_request_seconds_bucket" in text
    assert "trending_api_elasticsearch_errors_total" in text


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/trending",
        "/api/search",
        "/api/papers/{arxiv_id}",
        "/api/users/{user}/trending",
        "/healthz",
        "/metrics",
    ):
        assert path in paths
    assert client.get("/docs").status_code == 200


def test_page_and_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert 'src="app.js"' in page.text and "Content-Security-Policy" in page.text
    assert client.get("/app.js").status_code == 200
    assert client.get("/style.css").status_code == 200


def test_page_script_never_builds_html_from_strings() -> None:
    # Escaping is structural: data only ever reaches the DOM as text or attributes.
    scripts = sorted(STATIC_DIR.glob("*.js"))
    assert STATIC_DIR / "app.js" in scripts
    for script in scripts:
        source = script.read_text(encoding="utf-8")
        for sink in (".innerHTML", ".outerHTML", ".insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, (script.name, sink)
    # Only our own files, no inline script (the CSP allows 'self' only); the paper page
    # (paper.html) loads the shared helpers (common.js) and paper.js, the main page every
    # script but paper.js.
    pages = {"index.html": [s for s in scripts if s.name != "paper.js"], "paper.html": []}
    pages["paper.html"] = [STATIC_DIR / "common.js", STATIC_DIR / "paper.js"]
    for name, loaded in pages.items():
        page = Path(STATIC_DIR / name).read_text()
        assert page.count("<script") == len(loaded), name
        for script in loaded:
            assert f'<script src="{script.name}" defer></script>' in page, (name, script.name)
