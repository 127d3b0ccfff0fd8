"""`trending-arxiv up` as a test runs it: a real child process, its status and its API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

from trending_arxiv.web.server import free_port

T = TypeVar("T")
CLI = [sys.executable, "-m", "trending_arxiv.cli.main"]


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 180.0) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    found: T | None = None
    while time.monotonic() < deadline:
        try:
            found = check()
        except (httpx.HTTPError, ValueError, KeyError) as error:
            last_error, found = error, None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what} ({last_error}; last check gave "
        f"{found!r:.300})"
    )


class UpRun:
    """One `trending-arxiv up` in its own namespace, state directory and log file."""

    def __init__(self, work: Path, namespace: str, sources: str, **extra_env: str) -> None:
        self.namespace = namespace
        self.work = work
        self.port = free_port()
        self.log_path = work / "up.log"
        self.env = {
            **os.environ,
            "TRENDING_NAMESPACE": namespace,
            "TRENDING_ARXIV_ENABLED": "false",  # offline: metadata from the bundled catalog
            "TRENDING_RUN_STATE_DIR": str(work / "run"),
            "TRENDING_CHECKPOINT_DIR": str(work / "checkpoints"),
            "TRENDING_SINK_FLUSH_SECONDS": "0.2",
            "TRENDING_BATCH_TIMEOUT_SECONDS": "0.1",
            **extra_env,
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*CLI, "up", "--sources", sources, "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=work,
                start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict[str, Any]:
        """What `trending-arxiv status --json` prints from another terminal."""
        done = subprocess.run(
            [*CLI, "status", "--json"], env=self.env, capture_output=True, timeout=60, check=True
        )
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    def processes(self) -> dict[str, dict[str, Any]]:
        return {row["name"]: row for row in self.status()["processes"]}

    def ranking(self) -> dict[str, int]:
        """arXiv id -> all-time posts, as the API serves them (titled papers only)."""
        body = httpx.get(
            f"{self.url}/api/trending",
            params={"window": "all", "sort": "posts", "limit": 100},
            timeout=10,
        ).json()
        return {p["arxiv_id"]: p["posts"] for p in body.get("papers", []) if p.get("title")}

    def serves(self, expected: dict[str, int]) -> bool:
        """True once the API serves exactly `expected`; else ValueError naming the papers off.

        `wait_for` keeps the last error, so a timeout says which counts were wrong.
        """
        ranking = self.ranking()
        if ranking == expected:
            return True
        off = {
            paper: (ranking.get(paper), expected.get(paper))
            for paper in sorted(set(ranking) | set(expected))
            if ranking.get(paper) != expected.get(paper)
        }
        raise ValueError(f"served/expected differ for {len(off)} papers: {off}")

    def ours(self) -> list[psutil.Process]:
        """Every live process (but the test's own) running in this run's namespace."""
        found = []
        for process in psutil.process_iter(["pid", "status"]):
            if process.pid == os.getpid() or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            with contextlib.suppress(psutil.Error):
                if process.environ().get("TRENDING_NAMESPACE") == self.namespace:
                    found.append(process)
        return found

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 90.0) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill_everything(self) -> None:
        """Clean-up whatever the test's outcome: `up` and anything left in its namespace.

        The logs' tails are printed: pytest shows them when the test failed.
        """
        for path in [self.log_path, *sorted(self.work.glob("run/*/logs/*.log"))]:
            with contextlib.suppress(OSError):
                print(
                    f"--- {path.name} (tail) ---\n"
                    + "\n".join(path.read_text(errors="replace").splitlines()[-60:])
                )
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for process in self.ours():
            with contextlib.suppress(psutil.Error):
                process.kill()


def x_posts(arxiv_id: str, count: int) -> list[dict]:
    """Posts in the X API v2 shape of the seed sample, from distinct accounts."""
    posts = []
    for n in range(count):
        post_id = str(900000000000000000 + n)
        user_id = str(5000000 + n)
        posts.append(
            {
                "data": {
                    "id": post_id,
                    "text": f"Worth a read: arXiv:{arxiv_id} ({n})",
                    "author_id": user_id,
                    "conversation_id": post_id,
                    "created_at": f"2016-02-08T{10 + n % 10:02d}:{n:02d}:00.000Z",
                    "edit_history_tweet_ids": [post_id],
                    "lang": "en",
                },
                "includes": {
                    "users": [{"id": user_id, "name": f"Reader {n}", "username": f"reader{n}"}]
                },
            }
        )
    return posts
