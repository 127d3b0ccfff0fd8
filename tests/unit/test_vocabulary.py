"""One vocabulary: the API, the CLI and the query objects accept the same words and limits
(declared once, in trending_arxiv.core.vocabulary)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from trending_arxiv.core.vocabulary import (
    MAX_PAGE_SIZE,
    MAX_SEARCH_TEXT,
    SEARCH_SORTS,
    SORTS,
    SOURCES,
    WINDOWS,
)
from trending_arxiv.search.papers import SearchQuery
from trending_arxiv.search.queries import TrendingQuery
from trending_arxiv.settings import CommonSettings
from trending_arxiv.web.api import create_api


def _parameters(path: str) -> dict[str, dict[str, Any]]:
    schema = create_api(CommonSettings(namespace="unit-vocabulary")).openapi()
    parameters = schema["paths"][path]["get"]["parameters"]
    return {p["name"]: p["schema"] for p in parameters}


def _choices(schema: dict[str, Any]) -> tuple[str, ...]:
    """The enum of a parameter's schema, optional (`anyOf` with null) or not."""
    for option in schema.get("anyOf", [schema]):
        if "enum" in option:
            return tuple(option["enum"])
    raise AssertionError(f"no enum in {schema}")


def test_the_api_speaks_the_vocabulary() -> None:
    trending = _parameters("/api/trending")
    assert _choices(trending["window"]) == WINDOWS
    assert _choices(trending["sort"]) == SORTS
    assert _choices(trending["source"]) == SOURCES
    assert trending["limit"]["maximum"] == MAX_PAGE_SIZE
    search = _parameters("/api/search")
    assert _choices(search["sort"]) == SEARCH_SORTS
    assert search["q"]["maxLength"] == MAX_SEARCH_TEXT


def test_query_objects_take_the_same_limits() -> None:
    assert TrendingQuery(limit=MAX_PAGE_SIZE).limit == MAX_PAGE_SIZE
    with pytest.raises(ValueError, match="limit"):
        TrendingQuery(limit=MAX_PAGE_SIZE + 1)
    assert SearchQuery("a" * MAX_SEARCH_TEXT).text
    with pytest.raises(ValueError, match="search text"):
        SearchQuery("a" * (MAX_SEARCH_TEXT + 1))


@pytest.mark.parametrize("command", [["top"], ["search", "rnn"]])
def test_the_cli_takes_the_same_page_size(command: list[str]) -> None:
    too_many = subprocess.run(
        [sys.executable, "-m", "trending_arxiv.cli.main", *command, "--limit",
         str(MAX_PAGE_SIZE + 1)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert too_many.returncode == 2, too_many.stderr  # a usage error, before any query
    assert "--limit" in too_many.stderr


def test_the_cli_and_the_api_judge_a_query_with_one_model() -> None:
    from elasticsearch import Elasticsearch
    from fastapi.testclient import TestClient

    dead = "http://127.0.0.1:9"  # nothing listens: validation answers before any query
    api = create_api(
        CommonSettings(namespace="unit-vocabulary", elasticsearch_url=dead),
        Elasticsearch(dead, max_retries=0, request_timeout=1),
    )
    with TestClient(api) as client:
        answer = client.get("/api/trending", params={"as_of": "yesterday", "window": "2h"})
    assert answer.status_code == 422
    cli = subprocess.run(
        [sys.executable, "-m", "trending_arxiv.cli.main", "top", "--as-of", "yesterday",
         "--window", "2h"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "ELASTICSEARCH_URL": dead},
    )  # fmt: skip
    assert cli.returncode != 0
    for message in answer.json()["error"].split("; "):  # the same words, field by field
        assert message in " ".join(cli.stderr.split()), (message, cli.stderr)
