"""Bluesky producer against a local fake Jetstream replaying recorded events, into Kafka."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from producers.bluesky import BlueskyProducer
from producers.prefilter import jetstream_event_passes
from producers.settings import BlueskyProducerSettings
from tests.fakes import FakeJetstream
from tests.fakes.jetstream import CORPUS, load_events, train_dictionary
from tests.fakes.kafka import delete_topic, fresh_namespace, headers_of, read_topic
from tests.fakes.paths import REPO

pytestmark = pytest.mark.integration

EVENTS = load_events(CORPUS)
PASSING = [raw for raw in EVENTS if jetstream_event_passes(raw, json.loads(raw))]
WANTED = ("app.bsky.feed.post", "app.bsky.feed.repost")
# What Jetstream sends for wantedCollections=WANTED: those commits, identity and account.
SERVED = [
    raw
    for raw in EVENTS
    if json.loads(raw).get("commit", {}).get("collection") in WANTED
    or "commit" not in json.loads(raw)
]
LAST_TIME_US = max(json.loads(raw)["time_us"] for raw in SERVED)


def _dead_url() -> str:
    """A loopback URL where nothing listens (a failed Jetstream host)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"ws://127.0.0.1:{port}/subscribe"


@pytest.fixture
def settings(tmp_path: Path, stack_endpoints: tuple[str, str]) -> Iterator[BlueskyProducerSettings]:
    s = BlueskyProducerSettings(
        namespace=fresh_namespace("test-bsky"),
        checkpoint_dir=tmp_path,
        kafka_linger_ms=5,
        bluesky_rewind_seconds=0.05,
    )
    yield s
    delete_topic(s)


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _run(producer: BlueskyProducer, until: Callable[[], bool]) -> None:
    thread = threading.Thread(target=producer.run)
    thread.start()
    try:
        _wait(until)
    finally:
        producer.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_failover_and_reconnect_deliver_each_event_once_and_save_the_cursor(
    settings: BlueskyProducerSettings,
) -> None:
    assert len(PASSING) == 16  # 15 reposts and 1 post delete in the recorded window
    with FakeJetstream() as fake:
        fake.drop_after.append(20)  # the first connection to the live host breaks
        settings = settings.model_copy(update={"bluesky_jetstream_urls": [_dead_url(), fake.url]})
        producer = BlueskyProducer(settings, reconnect_scale=0.01)
        _run(producer, lambda: producer.metrics.received >= len(SERVED))
        connections = list(fake.connections)

    assert len(connections) == 2
    assert connections[0]["wantedCollections"] == list(WANTED)
    assert "cursor" not in connections[0]
    resumed_at = int(connections[1]["cursor"][0])
    records = read_topic(settings, expected=len(PASSING))
    assert Counter(r.value for r in records) == Counter(PASSING)  # exactly once each
    for record in records:
        doc = json.loads(record.value)
        c = doc["commit"]
        assert record.key.decode() == f"at://{doc['did']}/{c['collection']}/{c['rkey']}"
        assert headers_of(record)["source"] == b"bluesky"
    saved = json.loads(settings.cursor_path().read_text())["time_us"]
    assert saved == LAST_TIME_US
    assert resumed_at < saved
    assert producer.metrics.received == len(SERVED)
    assert producer.metrics.filtered == len(SERVED) - len(PASSING)


def test_zstd_frames_with_a_dictionary(settings: BlueskyProducerSettings, tmp_path: Path) -> None:
    dictionary = train_dictionary(EVENTS)
    (tmp_path / "dict").write_bytes(dictionary)
    with FakeJetstream(dictionary=dictionary) as fake:
        settings = settings.model_copy(
            update={
                "bluesky_jetstream_urls": [fake.url],
                "bluesky_compress": True,
                "bluesky_zstd_dictionary": tmp_path / "dict",
            }
        )
        producer = BlueskyProducer(settings)
        _run(producer, lambda: producer.metrics.sent >= len(PASSING))
        assert fake.connections[0]["compress"] == ["true"]
    records = read_topic(settings, expected=len(PASSING))
    assert Counter(r.value for r in records) == Counter(PASSING)


def test_killed_producer_resumes_from_its_cursor(
    settings: BlueskyProducerSettings, tmp_path: Path
) -> None:
    cursor_file = tmp_path / "cursor.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TRENDING_NAMESPACE": settings.namespace,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
    }
    with FakeJetstream() as fake:
        fake.delay = 0.02  # about 3 s for the window
        cmd = [sys.executable, "-m", "producers.cli", "bluesky", "--url", fake.url,
               "--cursor-file", str(cursor_file), "--rewind", "0.05"]  # fmt: skip
        first = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: cursor_file.exists())
            first.send_signal(signal.SIGKILL)
        finally:
            first.wait(timeout=30)
        at_kill = json.loads(cursor_file.read_text())["time_us"]
        second = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: len(fake.connections) == 2)
            _wait(lambda: json.loads(cursor_file.read_text())["time_us"] == LAST_TIME_US)
        finally:
            second.send_signal(signal.SIGTERM)
            _, errors = second.communicate(timeout=60)
        assert second.returncode == 0, errors
        resumed = int(fake.connections[1]["cursor"][0])

    assert resumed == at_kill - 50_000  # the saved cursor, rewound 0.05 s
    records = read_topic(settings, expected=len(PASSING))
    assert set(r.value for r in records) == set(PASSING)  # nothing lost across the kill
    # Anything sent twice lies after the rewound cursor.
    twice = [
        json.loads(v)["time_us"] for v, n in Counter(r.value for r in records).items() if n > 1
    ]
    assert all(t >= resumed for t in twice)
