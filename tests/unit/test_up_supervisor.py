"""`up`'s pieces that need no Kafka: sources, the supervisor's restarts and stop, the
stream's change detection, the status table. Children are real processes (`python -c`)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from trending_arxiv.devstack.processes import spawn
from trending_arxiv.devstack.status import RecordsRate, status_table
from trending_arxiv.devstack.supervisor import ChildSpec, Supervisor
from trending_arxiv.devstack.up import Source, UpError, child_specs, parse_sources
from trending_arxiv.web.live import count_changes, sse


def python_child(args: tuple[str, ...], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-c", *args], env, log)


def run_until(supervisor: Supervisor, done: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, [c.row() for c in supervisor.children]
        supervisor.tick()
        time.sleep(0.05)


def test_sources_default_to_bluesky_and_add_configured_x_and_mastodon(tmp_path: Path) -> None:
    assert parse_sources(None, {}) == [Source("bluesky")]
    env = {"TRENDING_X_BEARER_TOKEN_FILE": "/run/x", "TRENDING_MASTODON_BASE_URL": "https://m"}
    assert [s.kind for s in parse_sources("", env)] == ["bluesky", "x", "mastodon"]
    sample = tmp_path / "posts.jsonl"
    sample.write_text("{}\n")
    chosen = parse_sources(f"bluesky, bluesky,replay:{sample}", {})
    assert chosen == [Source("bluesky"), Source("replay", sample.resolve())]
    for bad, message in (
        ("twitter", "unknown source"),
        ("replay", "needs a path"),
        (f"replay:{tmp_path / 'missing.jsonl'}", "does not exist"),
        ("x:foo", "takes no argument"),
        ("bluesky,x", "bearer token"),
        (",", "no source"),
    ):
        with pytest.raises(UpError, match=message):
            parse_sources(bad, {})


def test_child_specs_mark_producers_and_finishing_replays(tmp_path: Path) -> None:
    specs = child_specs([Source("replay", tmp_path), Source("bluesky")], 8123, "127.0.0.1", None)
    by_name = {s.name: s for s in specs}
    assert list(by_name) == ["worker", "sink", "alerts", "web", "replay", "bluesky"]
    assert by_name["web"].args == ("serve", "--host", "127.0.0.1", "--port", "8123")
    assert by_name["replay"].producer and by_name["replay"].finishes
    assert by_name["bluesky"].producer and not by_name["bluesky"].finishes
    assert not any(by_name[n].producer for n in ("worker", "sink", "alerts", "web"))
    rules = tmp_path / "rules.yaml"
    assert child_specs([], 1, "h", rules)[2].args == ("alerts", "--rules", str(rules))


def test_a_dying_child_is_restarted_with_back_off_and_a_finished_one_is_not(
    tmp_path: Path,
) -> None:
    events: list[str] = []
    supervisor = Supervisor(
        [
            ChildSpec("crasher", ("import sys; sys.exit(3)",), before_restart=lambda: "cleaned"),
            ChildSpec("finisher", ("pass",), producer=True, finishes=True),
            ChildSpec(
                "failing-replay",
                ("import sys; sys.exit(1)",),
                finishes=True,
                before_restart=lambda: 1 / 0,  # a failing clean-up must not stop restarts
            ),
        ],
        env={},
        log_dir=tmp_path,
        on_event=events.append,
        spawn=python_child,
    )
    supervisor.start()
    crasher, finisher, failing = supervisor.children
    try:
        run_until(supervisor, lambda: crasher.restarts >= 2 and failing.restarts >= 1)
        run_until(supervisor, lambda: finisher.state == "done")
        assert finisher.restarts == 0 and finisher.last_exit == 0
        assert crasher.last_exit == 3
        # Back-off doubles: 0.5 s, then 1 s, then 2 s before the next start.
        assert crasher.backoff >= 2.0
        assert any(
            "crasher" in e and "exited with status 3; restarting in 0.5 s" in e for e in events
        )
        assert any(e.startswith("restarted crasher") for e in events)
        assert events.count("cleaned") == crasher.restarts
        assert any("before restarting failing-replay: ZeroDivisionError" in e for e in events)
        assert "finisher finished" in events
    finally:
        supervisor.stop(timeout=5)
    assert {c.state for c in supervisor.children} <= {"stopped", "done"}


def test_stop_ends_children_and_their_own_children(tmp_path: Path) -> None:
    # A child that starts a grandchild and ignores SIGTERM: both must still go.
    code = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
        "print(p.pid, flush=True); time.sleep(600)"
    )
    sleeper = ChildSpec("producer", ("import time; time.sleep(600)",), producer=True)
    supervisor = Supervisor(
        [ChildSpec("stubborn", (code,)), sleeper],
        env={}, log_dir=tmp_path, on_event=lambda _: None, spawn=python_child,
    )  # fmt: skip
    supervisor.start()
    log = tmp_path / "stubborn.log"
    deadline = time.monotonic() + 20
    while not log.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int(log.read_text().split()[0])
    pids = [c.process.pid for c in supervisor.children if c.process] + [grandchild]
    assert all(psutil.pid_exists(pid) for pid in pids)
    supervisor.stop(timeout=2)
    assert not [pid for pid in pids if psutil.pid_exists(pid) and _not_zombie(pid)]
    assert [c.state for c in supervisor.children] == ["stopped", "stopped"]


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stream_sends_order_and_count_changes_only() -> None:
    rows = [{"arxiv_id": "a", "posts": 5}, {"arxiv_id": "b", "posts": 3}]
    assert count_changes(None, rows) == (True, {})
    assert count_changes({"a": 5, "b": 3}, rows) == (False, {})
    assert count_changes({"b": 3, "a": 5}, rows) == (True, {})  # order changed
    grown = [{"arxiv_id": "b", "posts": 9}, {"arxiv_id": "a", "posts": 5}]
    assert count_changes({"a": 5, "b": 3}, grown) == (True, {"b": 6})
    # A paper new to the view gained nothing "since": the page marks it itself.
    assert count_changes({"a": 5}, rows) == (True, {})
    event = sse("ranking", {"text": "two\nlines"})
    assert event.startswith("event: ranking\ndata: ") and event.endswith("\n\n")
    assert event.count("\n") == 3  # the newline inside is escaped by JSON


def test_posts_rate_and_status_table() -> None:
    rate = RecordsRate(span=60)
    assert rate.add(100) is None
    time.sleep(0.2)
    measured = rate.add(200)
    assert measured is not None and 100 < measured <= 500
    status = {
        "namespace": "ns",
        "processes": [
            {"name": "worker", "role": "worker", "pid": 41, "state": "running", "alive": True,
             "restarts": 2},
            {"name": "sink", "role": "sink", "pid": 42, "state": "running", "alive": False,
             "restarts": 0},
        ],
        "raw_records_per_second": 12.5,
        "kafka": {"reachable": True, "raw_records_in": 1234, "lag": {"worker": 7, "sink": 0}},
        "elasticsearch": {"reachable": True, "papers_counted": 20,
                          "last_event_time": "2016-02-09T11:34:52Z",
                          "stream_behind_seconds": 90.0},
    }  # fmt: skip
    console = Console(width=140, record=True)
    console.print(status_table(status))
    text = console.export_text()
    assert "worker" in text and " 41 " in text and "running" in text
    assert "gone" in text  # recorded as running, but its pid is not alive
    assert "raw records in 1,234 (12.5/s)" in text and "papers counted 20" in text
    assert "90 s behind the wall clock" in text
