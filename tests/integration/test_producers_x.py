"""X producer against a local fake X API serving recorded payloads, into the real Kafka."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from producers.settings import XProducerSettings
from producers.x import XProducer
from producers.x_api import EXPANSIONS, RULE_TAG_PREFIX, StreamBackoff, arxiv_url_clause
from tests.fakes import REAL_FIXTURES, Fail, FakeXApi, Serve
from tests.fakes.kafka import delete_topic, fresh_namespace, headers_of, read_topic
from tests.fakes.x_api import SEARCH_PATH, STREAM_PATH

pytestmark = pytest.mark.integration

STREAM = REAL_FIXTURES / "x_v2_twarc_filtered_stream_with_truncated_line.jsonl"
PAGES = [
    (REAL_FIXTURES / "x_v2_twarc_search_recent_brexit.jsonl").read_bytes().strip(),
    (REAL_FIXTURES / "x_v2_postman_recent_search_tweet_fields.json").read_bytes(),
    (REAL_FIXTURES / "x_v2_postman_recent_search_expansions_users.json").read_bytes(),
]
TOKEN = "test-bearer-4f1c"


@pytest.fixture
def settings(tmp_path: Path, stack_endpoints: tuple[str, str]) -> Iterator[XProducerSettings]:
    s = XProducerSettings(
        namespace=fresh_namespace("test-x"),
        x_bearer_token=SecretStr(TOKEN),
        checkpoint_dir=tmp_path / "checkpoints",
        x_follows_dir=tmp_path / "follows",
        kafka_linger_ms=5,
    )
    yield s
    delete_topic(s)


def _wait(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_stream_survives_disconnects_and_429_delivering_each_post_once(
    settings: XProducerSettings, caplog: pytest.LogCaptureFixture
) -> None:
    lines = STREAM.read_bytes().split(b"\n")
    assert len(lines) == 8 and not lines[7].endswith(b"}")  # 7 posts and a truncated line
    half = len(lines[4]) // 2
    with FakeXApi() as fake:
        fake.stream_script.extend(
            [
                # Connection 1 breaks in the middle of post 5.
                Serve(b"\r\n".join(lines[:4]) + b"\r\n" + lines[4][:half], then="drop"),
                # Connection 2: the recorded 429 "too many connections" problem.
                Fail(
                    429,
                    (
                        REAL_FIXTURES / "x_v2_postman_filtered_stream_429_too_many_connections.json"
                    ).read_bytes(),
                ),
                # Connection 3: posts 5-7, keep-alives, then the recorded truncated line.
                Serve(b"\r\n".join(lines[4:7]) + b"\r\n\r\n" + lines[7], then="drop"),
            ]
        )
        settings = settings.model_copy(update={"x_api_base_url": fake.url})
        producer = XProducer(settings, backoff=StreamBackoff(scale=0.01))
        thread = threading.Thread(target=producer.run)
        thread.start()
        try:
            _wait(lambda: fake.stream_connections >= 4 and producer.metrics.sent >= 7)
        finally:
            producer.request_stop()
            thread.join(timeout=30)
        assert not thread.is_alive()
        stream_requests = fake.requests_to(STREAM_PATH)

    records = read_topic(settings, expected=7)
    expected_ids = [json.loads(line)["data"]["id"] for line in lines[:7]]
    assert sorted(r.key.decode() for r in records) == sorted(expected_ids)  # each exactly once
    by_key = {r.key.decode(): r for r in records}
    for line in lines[:7]:
        record = by_key[json.loads(line)["data"]["id"]]
        assert record.value == line  # unmodified
        assert headers_of(record)["source"] == b"x"
        assert headers_of(record)["fetched_at"].endswith(b"Z")
    assert producer.truncated == 2  # half of post 5 and the recorded truncated line
    assert producer.metrics.errors["rate_limited"] == 1
    # Rules were put in place before streaming, tagged as ours.
    assert [r["value"] for r in fake.rules] == [arxiv_url_clause()]
    assert fake.rules[0]["tag"].startswith(RULE_TAG_PREFIX)
    params = stream_requests[0].query
    assert "note_tweet" in params["tweet.fields"][0].split(",")
    assert params["expansions"][0].split(",") == list(EXPANSIONS)
    assert stream_requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in caplog.text


def test_search_polls_pages_honours_429_and_resumes_from_since_id(
    settings: XProducerSettings,
) -> None:
    with FakeXApi(search_pages=PAGES, search_rate_limited=1) as fake:
        settings = settings.model_copy(update={"x_api_base_url": fake.url, "x_mode": "search"})
        producer = XProducer(settings, backoff=StreamBackoff(scale=0.01))
        started = time.monotonic()
        since = producer.poll_search(["arxiv"])
        waited = time.monotonic() - started
        first_poll = list(fake.requests_to(SEARCH_PATH))
        # A second poll (as after a restart, from the checkpoint) asks only for newer posts.
        again = XProducer(settings, backoff=StreamBackoff(scale=0.01))
        again.poll_search(["arxiv"])
        second_poll = fake.requests_to(SEARCH_PATH)[len(first_poll) :]
        producer.writer.close()
        again.writer.close()

    newest = json.loads(PAGES[0])["meta"]["newest_id"]
    assert since == {"arxiv": newest}
    assert json.loads(producer.checkpoint.path.read_text())["since_ids"] == {"arxiv": newest}
    # 429 first (waited until x-rate-limit-reset), then the three pages by next_token.
    assert len(first_poll) == 4 and waited >= 0.5
    assert [r.param("next_token") for r in first_poll[1:]] == [
        None,
        json.loads(PAGES[0])["meta"]["next_token"],
        json.loads(PAGES[1])["meta"]["next_token"],
    ]
    assert [r.param("since_id") for r in second_poll] == [newest]
    records = read_topic(settings, expected=3)
    assert sorted(r.value for r in records) == sorted(PAGES)
    for record in records:
        assert record.key.decode() == json.loads(record.value)["data"][0]["id"]
    assert again.metrics.sent == 0


def test_follow_list_is_fetched_saved_and_turned_into_batched_rules(
    settings: XProducerSettings,
) -> None:
    users = json.loads(PAGES[0])["includes"]["users"]
    me, followed = users[0], users[1:]
    with FakeXApi() as fake:
        fake.users = {me["username"].lower(): me}
        fake.following_pages = [followed[:100], followed[100:]]
        fake.stream_script.append(Serve(STREAM.read_bytes().split(b"\n")[0] + b"\r\n"))
        settings = settings.model_copy(
            update={
                "x_api_base_url": fake.url,
                "x_mode": "follows",
                "x_follow_handle": "@" + me["username"],
            }
        )
        producer = XProducer(settings, backoff=StreamBackoff(scale=0.01))
        thread = threading.Thread(target=producer.run)
        thread.start()
        try:
            _wait(lambda: producer.metrics.sent >= 1)
        finally:
            producer.request_stop()
            thread.join(timeout=30)
        rules = [r["value"] for r in fake.rules]

    saved = json.loads((settings.x_follows_dir / f"{me['username'].lower()}.json").read_text())
    assert saved["user_id"] == me["id"]
    assert [u["id"] for u in saved["following"]] == [u["id"] for u in followed]
    assert len(rules) > 1 and all(len(rule) <= settings.x_rule_max_length for rule in rules)
    in_rules = [
        part.split(" ")[0].rstrip(")") for rule in rules for part in rule.split("from:")[1:]
    ]
    assert in_rules == [u["username"] for u in followed]
    assert len(read_topic(settings, expected=1)) == 1
