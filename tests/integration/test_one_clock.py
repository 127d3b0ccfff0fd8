"""One clock for every view, on a replayed archive through the real pipeline.

Plain `top` ranks from the stream's counts; `--user`, `--source` and the API's filters
aggregate the mentions index. Both must answer as of the same moment (the stream's
time) with the same window edges, so on replayed history:

- a user's ranking is not empty (it was: the filtered views measured from today);
- for every window the per-source rankings add up to the unfiltered one;
- a user who follows every account sees exactly the unfiltered ranking.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from producers.replay import replay
from producers.settings import ProducerSettings
from tests.integration.pipeline import group_lag, settings_for, start_pipeline
from trending_arxiv.core import counting
from trending_arxiv.core.models import WINDOWS, parse_utc
from trending_arxiv.core.simulate import SimulationResult, read_lines, simulate
from trending_arxiv.demo import bundled_sample_path
from trending_arxiv.devstack.pipeline import PipelineProcesses
from trending_arxiv.search.queries import TrendingQuery, stream_time, trending_page
from trending_arxiv.settings import CommonSettings, SinkSettings
from trending_arxiv.web.api import create_api

pytestmark = pytest.mark.integration

Row = tuple[str, int, int]


def _wait_counted(es: Elasticsearch, settings: CommonSettings, reference: SimulationResult) -> None:
    deadline = time.monotonic() + 180
    papers: dict[str, int] = {}
    mentions = 0
    while time.monotonic() < deadline:
        try:
            es.indices.refresh(index=f"{settings.namespace}-*")
            mentions = es.count(index=settings.indices.mentions)["count"]
            hits = es.search(index=settings.indices.papers, size=1000, source=["posts"])
            papers = {
                h["_id"]: h["_source"].get("posts", {}).get("all", 0) for h in hits["hits"]["hits"]
            }
        except Exception:  # indices not created yet
            pass
        if papers == reference.posts_by_paper and mentions == len(reference.mention_ids):
            return
        time.sleep(0.5)
    raise AssertionError(f"not counted in time: {mentions} mentions, papers {papers}")


def _stop_worker_when_refreshed(processes: PipelineProcesses, refresh_seconds: float) -> None:
    """Let a count refresh run after the replay's last post, then stop the worker, so the
    papers index stays as the stream left it while the views are compared."""
    time.sleep(2.5 * refresh_seconds)
    for name, process, _ in processes.children:
        if name == "worker":
            process.terminate()
            process.wait(30)


def _wait_sink_caught_up(settings: CommonSettings) -> None:
    group = f"{settings.namespace}-{SinkSettings().sink_group_id}"
    topics = [settings.topics.mentions, settings.topics.counts]
    deadline = time.monotonic() + 60
    while group_lag(settings.kafka_bootstrap_servers, group, topics) != 0:
        assert time.monotonic() < deadline, "the sink did not catch up"
        time.sleep(0.5)
    time.sleep(1.0)  # past the sink's last bulk and the index refresh


def _ranking(
    es: Elasticsearch, settings: CommonSettings, window: str, sort: str = "posts", **filters: Any
) -> tuple[str | None, list[Row]]:
    query = TrendingQuery(window=window, sort=sort, limit=1000, **filters)  # type: ignore[arg-type]
    page = trending_page(es, settings, query)
    rows = [(r["arxiv_id"], r["posts"], r["accounts"]) for r in page.papers]
    return (page.as_of.isoformat() if page.as_of else None), rows


def _cli(settings: CommonSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRENDING_NAMESPACE": settings.namespace,
           "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "ELASTICSEARCH_URL": settings.elasticsearch_url}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "trending_arxiv.cli.main", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_every_view_answers_as_of_the_stream_time_on_a_replayed_archive(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    sample = bundled_sample_path()
    reference = simulate(read_lines([sample]))
    refresh_seconds = 3.0
    processes = start_pipeline(
        namespace, kafka, es_url, tmp_path, TRENDING_COUNTS_REFRESH_SECONDS=str(refresh_seconds)
    )
    es = Elasticsearch(es_url)
    try:
        replay([sample], ProducerSettings(kafka_bootstrap_servers=kafka, namespace=namespace),
               progress=False)  # fmt: skip
        _wait_counted(es, settings, reference)
        _stop_worker_when_refreshed(processes, refresh_seconds)
        _wait_sink_caught_up(settings)
        es.indices.refresh(index=f"{namespace}-*")

        # The stream's time is after the last post (the idle refresh moved it on), and the
        # papers index holds the stream's counts at that moment for every paper.
        now = stream_time(es, settings)
        last_post = max(u.last_seen for u in reference.counts.values() if u.last_seen)
        assert now is not None and now >= last_post
        hits = es.search(index=settings.indices.papers, size=1000)["hits"]["hits"]
        for hit in hits:
            posts, accounts = counting.window_counts(reference.states[hit["_id"]], now)
            assert hit["_source"]["posts"] == posts, hit["_id"]
            assert hit["_source"]["accounts"] == accounts, hit["_id"]

        mentions = [
            h["_source"]
            for h in es.search(index=settings.indices.mentions, size=10_000)["hits"]["hits"]
        ]
        everyone = sorted({m["account"] for m in mentions})
        sources = sorted({m["source"] for m in mentions})
        assert len(sources) >= 2  # the sample has X and Bluesky posts
        (tmp_path / "everyone.txt").write_text("\n".join(everyone) + "\n")
        stored = _cli(settings, "follows", "everyone", str(tmp_path / "everyone.txt"))
        assert stored.returncode == 0, stored.stderr

        for window in WINDOWS:
            for sort in ("posts", "accounts"):
                as_of, plain = _ranking(es, settings, window, sort)
                assert as_of == now.isoformat()
                user_as_of, followed = _ranking(es, settings, window, sort, user="everyone")
                assert (user_as_of, followed) == (as_of, plain), (window, sort)
            _, plain = _ranking(es, settings, window)
            added: dict[str, Counter[str]] = defaultdict(Counter)
            for source in sources:
                source_as_of, rows = _ranking(es, settings, window, source=source)
                assert source_as_of == now.isoformat()
                for arxiv_id, posts, accounts in rows:
                    added[arxiv_id].update(posts=posts, accounts=accounts)
            assert {a: (c["posts"], c["accounts"]) for a, c in added.items()} == {
                arxiv_id: (posts, accounts) for arxiv_id, posts, accounts in plain
            }, window

        # Alice follows the X accounts that posted the busiest paper: her 24h view of the
        # replayed history is their posts in the stream's last 24 hours, not nothing.
        alice = sorted(
            {m["account"] for m in mentions
             if m["arxiv_id"] == "1602.02410" and m["source"] == "x"}
        )  # fmt: skip
        (tmp_path / "alice.txt").write_text("\n".join(alice) + "\n")
        assert _cli(settings, "follows", "alice", str(tmp_path / "alice.txt")).returncode == 0
        start, end = counting.window_bounds("24h", now)
        assert start is not None
        expected: dict[str, set[str]] = defaultdict(set)
        expected_posts: Counter[str] = Counter()
        for m in mentions:
            moment = parse_utc(m["@timestamp"]).timestamp()
            if m["account"] in alice and start < moment <= end:
                expected[m["arxiv_id"]].add(m["account"])
                expected_posts[m["arxiv_id"]] += 1
        assert expected_posts  # the sample's last day has X posts of 1602.02410
        shown = _cli(settings, "top", "--user", "alice", "--window", "24h", "--json")
        assert shown.returncode == 0, shown.stderr
        rows = [json.loads(line) for line in shown.stdout.splitlines()]
        assert {r["arxiv_id"]: (r["posts"], r["accounts"]) for r in rows} == {
            a: (expected_posts[a], len(expected[a])) for a in expected
        }
        assert {parse_utc(r["as_of"]) for r in rows} == {now}

        # Plain `top --json` says the same moment; so do the API's filtered views.
        plain_json = _cli(settings, "top", "--window", "24h", "--json")
        assert plain_json.returncode == 0, plain_json.stderr
        moments = {json.loads(line)["as_of"] for line in plain_json.stdout.splitlines()}
        assert {parse_utc(moment) for moment in moments} == {now}
        api = TestClient(create_api(settings))
        for path in ("/api/trending?window=24h", "/api/users/alice/trending?window=24h",
                     "/api/trending?window=24h&source=bluesky"):  # fmt: skip
            body = api.get(path).json()
            assert parse_utc(body["as_of"]) == now, path
        body = api.get("/api/users/alice/trending?window=24h").json()
        assert [p["arxiv_id"] for p in body["papers"]] == [r["arxiv_id"] for r in rows]
    finally:
        processes.stop()
