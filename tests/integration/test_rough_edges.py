"""The rough edges a new user hits first, driven through the real commands and API on the
real Kafka and Elasticsearch: one clear error each, the same paper forms everywhere, and
no endless repeated log lines."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from trending_arxiv.kafka import group_offsets
from trending_arxiv.settings import CommonSettings
from trending_arxiv.web.api import create_api

pytestmark = pytest.mark.integration


def _run(
    namespace: str, kafka: str, es_url: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRENDING_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": kafka,
           "ELASTICSEARCH_URL": es_url, "COLUMNS": "200"}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "trending_arxiv.cli.main", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[Elasticsearch, CommonSettings]]:
    from tests.webdata import seeded_namespace

    with seeded_namespace("edges") as found:
        yield found


def test_a_bad_as_of_is_one_clear_error(stack_endpoints: tuple[str, str], namespace: str) -> None:
    kafka, es_url = stack_endpoints
    for value, words in (("yesterday", "ISO-8601"), ("0001-01-01T00:00:00Z", "between 1991")):
        done = _run(namespace, kafka, es_url, "top", "--as-of", value)
        assert done.returncode == 2
        errors = _errors(done.stderr)
        assert len(errors) == 1 and words in errors[0], done.stderr
        assert "Elasticsearch" not in done.stderr


def test_the_api_rejects_an_as_of_before_arxiv_clearly(
    seeded: tuple[Elasticsearch, CommonSettings],
) -> None:
    _, settings = seeded
    api = TestClient(create_api(settings))
    for path in ("/api/trending", "/api/users/alice/trending", "/api/papers/1602.02410"):
        answer = api.get(path, params={"as_of": "0001-01-01T00:00:00Z"})
        assert answer.status_code == 422, path
        assert "as_of must be between 1991-01-01 and 2999-12-31" in answer.json()["error"]
        assert "out of range" not in answer.json()["error"]


def test_top_on_a_namespace_without_data_says_so(
    stack_endpoints: tuple[str, str], namespace: str
) -> None:
    kafka, es_url = stack_endpoints
    for args in (("top",), ("top", "--source", "x"), ("top", "--user", "alice")):
        done = _run(namespace, kafka, es_url, *args)
        assert done.returncode == 2, done.stderr
        errors = _errors(done.stderr)
        assert len(errors) == 1, done.stderr
        assert f"no data yet in namespace {namespace!r}" in errors[0]
        assert "NotFoundError" not in done.stderr and "Traceback" not in done.stderr


def test_the_api_reads_a_paper_url_as_paper_does(
    seeded: tuple[Elasticsearch, CommonSettings], stack_endpoints: tuple[str, str]
) -> None:
    es, settings = seeded
    api = TestClient(create_api(settings, es))
    by_id = api.get("/api/papers/1602.02410").json()
    for form in ("https://arxiv.org/abs/1602.02410", "https:/arxiv.org/abs/1602.02410v2",
                 "arxiv.org/pdf/1602.02410", "arXiv:1602.02410"):  # fmt: skip
        answer = api.get(f"/api/papers/{form}")
        assert answer.status_code == 200, (form, answer.text)
        assert answer.json()["arxiv_id"] == "1602.02410"
        assert answer.json()["posts_by_window"] == by_id["posts_by_window"]
    kafka, es_url = stack_endpoints
    shown = _run(settings.namespace, kafka, es_url, "paper", "https://arxiv.org/abs/1602.02410",
                 "--json")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert '"arxiv_id": "1602.02410"' in shown.stdout


def test_offset_lookups_warn_nothing(
    stack_endpoints: tuple[str, str], namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker's stall watchdog looks up offsets every few seconds: kafka-python said
    "group_id is None: disabling auto-commit" each time, forever."""
    kafka, _ = stack_endpoints
    with caplog.at_level(logging.WARNING, logger="kafka"):
        for _ in range(3):
            group_offsets(kafka, f"{namespace}-group", [f"{namespace}-topic"])
    assert not [r for r in caplog.records if "group_id is None" in r.getMessage()]


def test_a_producer_with_kafka_down_says_each_trouble_once(
    tmp_path: Path, stack_endpoints: tuple[str, str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    sample = tmp_path / "posts.jsonl"
    sample.write_text('{"data": {"id": "1", "text": "arXiv:1602.02410"}}\n')
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": dead, "TRENDING_NAMESPACE": "down"}
    process = subprocess.Popen(
        [sys.executable, "-m", "trending_arxiv.cli.main", "produce", "replay", str(sample)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _, stderr = process.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    lines = [line for line in stderr.splitlines() if " kafka." in line]
    # Before: four lines per connection attempt, ~8 a second, for as long as Kafka is down.
    assert lines, stderr
    messages = [line.split(": ", 1)[1].split(":")[0] for line in lines]
    assert len(messages) == len(set(messages)), stderr
    assert len(lines) <= 6, stderr


def test_replaying_a_binary_file_fails_clearly(
    stack_endpoints: tuple[str, str], namespace: str, tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(bytes(range(256)) * 40 + b"\n\x89PNG\r\n\x1a\n" + bytes(200))
    done = _run(namespace, kafka, es_url, "produce", "replay", str(binary), "--json")
    assert done.returncode == 1, done.stderr
    assert f"{binary}: nothing in it is a post" in done.stderr
    assert json.loads(done.stdout)["not_posts"] == [str(binary)]
    # A file with posts after some junk is a replay like any other (junk is dead-lettered).
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\x00\x01junk\n" + b'{"data": {"id": "7", "text": "arXiv:1602.02410"}}\n')
    done = _run(namespace, kafka, es_url, "produce", "replay", str(mixed), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sent"] == 2
