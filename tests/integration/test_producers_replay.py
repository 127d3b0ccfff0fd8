"""`produce replay` into the real Kafka: exact delivery, headers, resume after a kill."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from producers.keys import key_of
from producers.replay import replay
from producers.settings import ProducerSettings
from tests.fakes import REAL_FIXTURES
from tests.fakes.kafka import delete_topic, fresh_namespace, headers_of, read_topic
from tests.fakes.paths import REPO

pytestmark = pytest.mark.integration

STREAM = REAL_FIXTURES / "x_v2_twarc_filtered_stream_with_truncated_line.jsonl"
CORPUS = REAL_FIXTURES / "bsky_jetstream_v1_corpus_window.jsonl"


@pytest.fixture
def settings(stack_endpoints: tuple[str, str]) -> Iterator[ProducerSettings]:
    s = ProducerSettings(namespace=fresh_namespace("test-replay"), kafka_linger_ms=5)
    yield s
    delete_topic(s)


def _cli(settings: ProducerSettings, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TRENDING_NAMESPACE": settings.namespace, "PYTHONPATH": str(REPO)}
    env["KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    return subprocess.Popen(
        [sys.executable, "-m", "producers.cli", "replay", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(path: Path, min_line: int, timeout: float = 30.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            doc = json.loads(path.read_text())
            if doc["line"] >= min_line:
                return doc
        time.sleep(0.05)
    raise AssertionError("checkpoint did not advance")


def test_replay_sends_every_line_once_unmodified_with_keys_and_headers(
    settings: ProducerSettings, tmp_path: Path
) -> None:
    # A directory with the recorded stream gzipped and a pretty-printed single-tweet body.
    (tmp_path / "a_stream.jsonl.gz").write_bytes(gzip.compress(STREAM.read_bytes()))
    single = REAL_FIXTURES / "x_v2_postman_single_tweet_tweet_fields.json"
    (tmp_path / "b_single.json").write_bytes(single.read_bytes())
    (tmp_path / "c_blank.jsonl").write_bytes(b"\n" + CORPUS.read_bytes().splitlines()[0] + b"\n\n")
    summary = replay([tmp_path], settings, progress=False)

    assert summary.complete and summary.files == 3
    assert summary.sent == 10 and summary.unparseable == 1 and summary.skipped["blank line"] == 2
    records = read_topic(settings, expected=10)
    lines = STREAM.read_bytes().split(b"\n")
    expected = [*lines, single.read_bytes().strip(), CORPUS.read_bytes().splitlines()[0]]
    assert Counter(r.value for r in records) == Counter(expected)
    for record in records:
        found = key_of(record.value)
        assert (record.key.decode() if record.key else None) == found.key
        assert headers_of(record)["source"] == found.source.encode()
    assert {headers_of(r)["source"] for r in records} == {b"x", b"bluesky", b"unknown"}


def test_killed_replay_resumes_from_checkpoint_without_loss(
    settings: ProducerSettings, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "replay.json"
    events = CORPUS.read_bytes().splitlines()
    first = _cli(
        settings, str(CORPUS), "--rate", "60", "--checkpoint", str(checkpoint), "--no-progress"
    )
    try:
        at_kill = _wait_for_checkpoint(checkpoint, min_line=30)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert 30 <= at_kill["line"] < len(events) and not at_kill["complete"]

    second = _cli(settings, str(CORPUS), "--checkpoint", str(checkpoint), "--no-progress", "--json")
    out, errors = second.communicate(timeout=120)
    assert second.returncode == 0, errors
    summary = json.loads(out)
    saved = json.loads(checkpoint.read_text())
    assert summary["complete"] and saved["complete"] and saved["file_index"] == 1
    assert summary["already_sent"] >= at_kill["line"]

    records = read_topic(settings, expected=len(events))
    values = Counter(r.value for r in records)
    assert set(values) == set(events)  # nothing lost
    # Duplicates only in the tail that was not yet acknowledged when killed.
    duplicated = {events.index(v) + 1 for v, n in values.items() if n > 1}
    assert all(line > at_kill["line"] for line in duplicated)


def test_sigterm_flushes_checkpoints_and_exits_zero(
    settings: ProducerSettings, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "replay.json"
    proc = _cli(
        settings,
        str(CORPUS),
        "--rate",
        "40",
        "--checkpoint",
        str(checkpoint),
        "--no-progress",
        "--json",
    )
    _wait_for_checkpoint(checkpoint, min_line=10)
    proc.send_signal(signal.SIGTERM)
    out, errors = proc.communicate(timeout=60)
    assert proc.returncode == 0, errors
    summary = json.loads(out)
    saved = json.loads(checkpoint.read_text())
    assert not summary["complete"] and not saved["complete"]
    # Everything sent was acknowledged and checkpointed: the checkpoint is exactly it.
    assert saved["line"] == summary["sent"]
    records = read_topic(settings, expected=summary["sent"])
    assert len(records) == summary["sent"]
    assert set(r.value for r in records) == set(CORPUS.read_bytes().splitlines()[: saved["line"]])


def test_bad_inputs_give_clear_errors(settings: ProducerSettings, tmp_path: Path) -> None:
    proc = _cli(settings, str(tmp_path / "missing.jsonl"))
    _, errors = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "no such file or directory" in errors
    other = tmp_path / "cp.json"
    other.write_text(json.dumps({"inputs": ["elsewhere.jsonl"], "file_index": 0, "line": 3}))
    proc = _cli(settings, str(STREAM), "--checkpoint", str(other))
    _, errors = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "other inputs" in errors
