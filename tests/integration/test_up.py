"""`trending-arxiv up` end to end: real Kafka and Elasticsearch, real child processes.

The seed sample replayed under `up` is served with its exact counts, a worker killed
with SIGKILL is restarted and the counts stay exact, `status --json` (and `/healthz`)
list every process with its pid and lag, and stopping `up` — with Ctrl-C, or by killing
it outright — leaves no process of the run behind. Bluesky goes through the real
producer talking to a local Jetstream that replays recorded events.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fakes.jetstream import CORPUS, FakeJetstream, load_events
from tests.integration.up_run import CLI, UpRun, wait_for, x_posts
from trending_arxiv.core.simulate import read_lines, simulate
from trending_arxiv.demo import bundled_sample_path

pytestmark = pytest.mark.integration

SEED = bundled_sample_path()
SEED_PAPERS = json.loads((SEED.parent / "seed_papers.json").read_text(encoding="utf-8"))


def test_up_replays_the_seed_survives_a_killed_worker_and_stops_cleanly(
    tmp_path: Path, namespace: str
) -> None:
    expected = simulate(read_lines([SEED])).posts_by_paper
    # The 2016 page's counts, as the seed sample's own test reads them.
    assert expected == {p["arxiv_id"]: p["seed_posts"] for p in SEED_PAPERS}
    more = tmp_path / "more.jsonl"
    more.write_text("".join(json.dumps(p) + "\n" for p in x_posts("1511.06909", 25)))
    expected_after = simulate(read_lines([SEED, more])).posts_by_paper
    run = UpRun(tmp_path, namespace, f"replay:{SEED}")
    try:
        first = wait_for("the worker to run", lambda: _running(run, "worker"))
        wait_for("the seed's exact counts", lambda: run.serves(expected))
        os.kill(first["pid"], signal.SIGKILL)
        restarted = wait_for(
            "the worker's restart",
            lambda: (row := _running(run, "worker")) and row["restarts"] >= 1 and row,
        )
        assert restarted["pid"] != first["pid"]
        assert "worker (pid" in run.log() and "signal SIGKILL" in run.log()
        assert "dropped the dead worker from" in run.log()
        # Only the new worker can count these; the seed again must change nothing.
        for path in (more, SEED):
            subprocess.run(
                [*CLI, "produce", "replay", str(path), "--no-progress"],
                env=run.env, check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        wait_for("the exact counts after the restart", lambda: run.serves(expected_after))
        page = httpx.get(run.url + "/", timeout=10)
        assert page.status_code == 200 and "Trending arXiv" in page.text

        status = wait_for(
            "no lag", lambda: (s := run.status())["kafka"]["lag"]["worker"] == 0 and s
        )
        assert status["up"]["running"] and status["up"]["pid"] == run.process.pid
        rows = {row["name"]: row for row in status["processes"]}
        assert set(rows) == {"worker", "sink", "alerts", "web", "replay"}
        for name in ("worker", "sink", "alerts", "web"):
            assert rows[name]["state"] == "running" and rows[name]["alive"], name
            assert psutil.Process(rows[name]["pid"]).is_running(), name
        assert rows["replay"]["state"] == "done" and rows["replay"]["last_exit"] == 0
        # The end offset of posts.raw: records, and the producers write envelopes (many
        # posts a record) by default, so at most one a post.
        assert 0 < status["kafka"]["raw_records_in"] <= 2 * len(list(read_lines([SEED]))) + 25
        assert set(status["kafka"]["lag"]) == {"worker", "sink", "alerts"}
        assert status["elasticsearch"]["papers_counted"] == len(expected_after)
        assert status["elasticsearch"]["last_event_time"].startswith("2016-02-")

        health = httpx.get(run.url + "/healthz", timeout=30).json()
        assert health["status"] == "ok"
        assert {p["name"]: p["pid"] for p in health["pipeline"]["processes"]} == {
            name: row["pid"] for name, row in rows.items()
        }

        pids = [row["pid"] for row in rows.values() if row["pid"]]
        assert run.stop(signal.SIGINT) == 0
        assert "stopped; every child process has exited" in run.log()
        assert not [pid for pid in pids if psutil.pid_exists(pid)]
        assert run.ours() == []
        assert run.status()["up"]["running"] is False
    finally:
        run.kill_everything()


def test_up_on_bluesky_shows_papers_and_a_killed_up_leaves_nothing(
    tmp_path: Path, namespace: str
) -> None:
    events = arxiv_jetstream_events()
    expected = simulate(events).posts_by_paper
    assert len(expected) >= 3
    with FakeJetstream(events) as jetstream:
        run = UpRun(
            tmp_path, namespace, "bluesky",
            TRENDING_BLUESKY_JETSTREAM_URLS=jetstream.url, TRENDING_BLUESKY_REWIND_SECONDS="0",
        )  # fmt: skip
        try:
            wait_for("Bluesky's papers on the page", lambda: run.serves(expected))
            assert jetstream.connections, "the producer never connected"
            rows = run.processes()
            assert set(rows) == {"worker", "sink", "alerts", "web", "bluesky"}
            children = [row["pid"] for row in rows.values()]
            # SIGKILL gives `up` no chance to stop anything: the kernel's parent-death
            # signal must stop every child by itself.
            run.process.kill()
            run.process.wait(10)
            wait_for(
                "every child to exit",
                lambda: not any(psutil.pid_exists(pid) for pid in children) and not run.ours(),
                timeout=60,
            )
        finally:
            run.kill_everything()


def arxiv_jetstream_events() -> list[bytes]:
    """The recorded Jetstream window, with a few recorded posts linking arXiv papers.

    The recorded window has no arXiv link (few posts link anything); the event shapes
    stay the recorded ones: the link is appended to the text with a link facet over it,
    as the Bluesky app writes one.
    """
    # Papers of the bundled catalog, so the page shows them with their titles offline.
    targets = ["1602.02410"] * 3 + ["1601.04589"] * 2 + ["1511.07916"]
    events: list[bytes] = []
    for raw in load_events(CORPUS):
        doc = json.loads(raw)
        commit = doc.get("commit", {})
        record = commit.get("record", {})
        if (
            targets
            and record.get("$type") == "app.bsky.feed.post"
            and commit["operation"] == "create"
        ):
            url = f"https://arxiv.org/abs/{targets.pop(0)}"
            text = f"{record.get('text', '')} "
            start = len(text.encode())
            record["text"] = text + url
            record["facets"] = [
                *(record.get("facets") or []),
                {
                    "index": {"byteStart": start, "byteEnd": start + len(url.encode())},
                    "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
                },
            ]
            record.pop("embed", None)
            raw = json.dumps(doc).encode()
        events.append(raw)
    assert not targets, "not enough recorded posts"
    return events


def _running(run: UpRun, name: str) -> dict | None:
    row = run.processes().get(name)
    if row and row["state"] == "running" and row["alive"] and row["pid"]:
        return row
    return None
