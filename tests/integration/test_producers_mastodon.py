"""Mastodon producer against a local fake instance (recorded statuses and SSE), into Kafka.

None of the recorded statuses links arXiv, so three statuses are derived from the recorded
one with a link card: the same status with its link pointed at an arXiv paper and new ids.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from producers.mastodon import MastodonProducer
from producers.settings import MastodonProducerSettings
from tests.fakes import REAL_FIXTURES, FakeMastodon, Serve
from tests.fakes.kafka import delete_topic, fresh_namespace, headers_of, read_topic
from tests.fakes.mastodon import sse_update

pytestmark = pytest.mark.integration

RECORDED = [
    (REAL_FIXTURES / name).read_bytes().strip()
    for name in (
        "mastodon_status_with_card.json",
        "mastodon_status_quote.json",
        "mastodon_status_reblog.json",
    )
]
SSE = (REAL_FIXTURES / "mastodon_streaming_user_update.sse").read_bytes()
TOKEN = "masto-token-93b"


def _derived(offset: int) -> bytes:
    """The recorded card status, linking arXiv, with an id after every recorded one."""
    card = json.loads(RECORDED[0])
    old_id = card["id"]
    new_id = str(117024248092393661 + offset)
    text = RECORDED[0].decode().replace("http://example.org/", "https://arxiv.org/abs/1605.08386")
    return text.replace(old_id, new_id).encode()


@pytest.fixture
def settings(
    tmp_path: Path, stack_endpoints: tuple[str, str]
) -> Iterator[MastodonProducerSettings]:
    s = MastodonProducerSettings(
        namespace=fresh_namespace("test-masto"),
        checkpoint_dir=tmp_path,
        kafka_linger_ms=5,
        mastodon_access_token=SecretStr(TOKEN),
    )
    yield s
    delete_topic(s)


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_catch_up_stream_and_reconnect_deliver_arxiv_statuses_once(
    settings: MastodonProducerSettings, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, c = _derived(1), _derived(2), _derived(3)
    with FakeMastodon(statuses=[*RECORDED, a]) as fake:
        # Stream 1: the recorded SSE body (heartbeat + a non-arXiv update), then b; it breaks,
        # and c is published while we are disconnected (caught up through the timeline).
        fake.stream_script.append(Serve(SSE + sse_update(b), then="drop"))
        fake.publish_on_drop.append(c)
        settings = settings.model_copy(update={"mastodon_base_url": fake.url})
        producer = MastodonProducer(settings, reconnect_scale=0.01)
        thread = threading.Thread(target=producer.run)
        thread.start()
        try:
            _wait(lambda: producer.metrics.sent >= 3 and fake.stream_connections >= 2)
        finally:
            producer.request_stop()
            thread.join(timeout=30)
        assert not thread.is_alive()
        timeline_requests = [r for r in fake.requests if r.path == "/api/v1/timelines/tag/arxiv"]
        stream_requests = [r for r in fake.requests if r.path == "/api/v1/streaming/hashtag"]

    records = read_topic(settings, expected=3)
    assert Counter(r.value for r in records) == Counter([a, b, c])
    for record in records:
        assert record.key.decode() == json.loads(record.value)["uri"]
        assert headers_of(record)["source"] == b"mastodon"
    # 3 recorded statuses and the recorded streamed update were read and filtered out.
    assert producer.metrics.filtered == 4
    assert json.loads(settings.checkpoint_file().read_text())["max_id"] == json.loads(c)["id"]
    assert stream_requests[0].param("tag") == "arxiv"
    # The catch-up after the drop asked for what came after the last status seen.
    assert json.loads(b)["id"] in [r.param("min_id") for r in timeline_requests]
    assert stream_requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in caplog.text


def test_poll_mode_resumes_from_checkpoint(settings: MastodonProducerSettings) -> None:
    a, b = _derived(1), _derived(2)
    with FakeMastodon(statuses=[*RECORDED, a]) as fake:
        settings = settings.model_copy(
            update={"mastodon_base_url": fake.url, "mastodon_mode": "poll"}
        )
        first = MastodonProducer(settings)
        first.writer.connect()
        first.catch_up()
        first.writer.flush()
        first.save()
        first.writer.close()
        fake.statuses.append(b)
        second = MastodonProducer(settings)  # a restart: resumes from the checkpoint
        second.writer.connect()
        assert second.catch_up() == 1
        second.writer.close()
        last = fake.requests[-2]
    assert last.param("min_id") == json.loads(a)["id"]
    records = read_topic(settings, expected=2)
    assert sorted(r.value for r in records) == sorted([a, b])


def test_a_stop_requested_while_the_stream_opens_is_not_missed(
    settings: MastodonProducerSettings,
) -> None:
    """`request_stop` closes the open stream; one that comes before the stream is open
    (its response not yet there to close) must still end it, though the instance sends
    only heartbeats (CI saw a stop wait forever here)."""
    with FakeMastodon(statuses=[]) as fake:  # the stream holds, heartbeats only
        settings = settings.model_copy(update={"mastodon_base_url": fake.url})
        producer = MastodonProducer(settings, reconnect_scale=0.01)
        producer.request_stop()  # no response yet: nothing to close
        thread = threading.Thread(target=producer.stream_once)
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert fake.stream_connections == 1
