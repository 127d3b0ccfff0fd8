"""Subscriptions, digests and the `field` sort on the real pipeline (issue 17's "done when").

One replay of the seed sample through Kafka → Faust → Elasticsearch (module fixture),
then the real commands: `top --sort field` against a naive recount over the mentions
index, a daily digest e-mailed to a local SMTP server (aiosmtpd), and a webhook on an
accounts trigger received by a local HTTP server, once per paper and hour bucket across
restarts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan
from kafka import KafkaAdminClient
from rich.console import Console

from producers.replay import replay
from producers.settings import ProducerSettings
from sinks.alerts import alerts_index
from sinks.subscriptions_delivery import SubscriptionService, SubscriptionSettings
from tests.fakes.http import FakeHttpServer, Reply, Request
from tests.integration.pipeline import settings_for, start_pipeline, wait_for_quiet
from trending_arxiv.core.models import parse_utc
from trending_arxiv.core.simulate import read_lines, simulate
from trending_arxiv.demo import bundled_sample_path, wait_until_counted
from trending_arxiv.search.queries import TrendingQuery, top_papers
from trending_arxiv.settings import CommonSettings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ADDRESS = "reader.secret-7f3a@example.org"


KAGGLE = "arxiv_kaggle_snapshot_first200.jsonl"


def several_fields(real_fixtures: Path, tmp: Path) -> tuple[Path, Path]:
    """Posts about papers of two more fields, and a catalog of them plus the seed papers.

    hep-ph (18 papers of the real Kaggle snapshot) gets 5, 7, ..., 39 distinct accounts;
    math.CO (its 5 papers) gets 1, 2, 3, 4 and 6: that 6 is the top of a small field, and
    hep-ph's 35 is third of a larger one. Posts are X API v2 stream messages dated in the
    week before the seed sample's last day.
    """
    records = [json.loads(line) for line in (real_fixtures / KAGGLE).read_text().splitlines()]
    by_field: dict[str, list[str]] = defaultdict(list)
    for record in records:
        by_field[record["categories"].split()[0]].append(record["id"])
    plan = [(i, 5 + 2 * n) for n, i in enumerate(sorted(by_field["hep-ph"]))]
    plan += list(zip(sorted(by_field["math.CO"]), (1, 2, 3, 4, 6), strict=True))
    lines, start = [], datetime(2016, 2, 1, tzinfo=UTC)
    for paper, accounts in plan:
        for n in range(accounts):
            post = 700_000_000_000_000_000 + len(lines)
            author = str(zlib.crc32(f"{paper}/{n}".encode()))
            lines.append(json.dumps({
                "data": {"id": str(post), "author_id": author, "text": f"Reading arXiv:{paper}",
                         "created_at": (start + timedelta(minutes=10 * len(lines)))
                         .strftime("%Y-%m-%dT%H:%M:%S.000Z")},
                "includes": {"users": [{"id": author, "username": f"reader{author}",
                                        "name": "Reader"}]},
            }))  # fmt: skip
    posts = tmp / "several_fields.jsonl"
    posts.write_text("\n".join(lines) + "\n")
    seed = json.loads((REPO / "trending_arxiv" / "data" / "seed_papers.json").read_text())
    catalog = tmp / "catalog.jsonl"
    catalog.write_text(
        "\n".join([json.dumps(p) for p in seed] + [json.dumps(r) for r in records]) + "\n"
    )
    return posts, catalog


@dataclass
class Replayed:
    settings: CommonSettings
    es: Elasticsearch
    env: dict[str, str]


@pytest.fixture(scope="module")
def replayed(
    stack_endpoints: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    real_fixtures: Path,
) -> Iterator[Replayed]:
    """The seed sample (plus two more fields) replayed through the real worker and sink,
    counted exactly."""
    kafka, es_url = stack_endpoints
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    settings = settings_for(namespace, kafka, es_url)
    logs = tmp_path_factory.mktemp("pipeline")
    sample = bundled_sample_path()
    more, catalog = several_fields(real_fixtures, logs)
    reference = simulate(read_lines([sample, more]))
    processes = start_pipeline(namespace, kafka, es_url, logs,
                               TRENDING_COUNTS_REFRESH_SECONDS="1",
                               TRENDING_CATALOG_PATH=str(catalog))  # fmt: skip
    es = Elasticsearch(es_url)
    try:
        producer = ProducerSettings(kafka_bootstrap_servers=kafka, namespace=namespace)
        replay([sample, more], producer, progress=False)
        wait_until_counted(settings, reference.posts_by_paper, len(reference.mention_ids),
                           processes, timeout=300, console=Console(quiet=True))  # fmt: skip
        wait_for_quiet(settings)
        env = {**os.environ, "TRENDING_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": kafka,
               "ELASTICSEARCH_URL": es_url}  # fmt: skip
        yield Replayed(settings, es, env)
    finally:
        processes.stop()
        es.options(ignore_status=404).indices.delete(index=f"{namespace}-*")
        for template in es.indices.get_index_template(name=f"{namespace}-*").get(
            "index_templates", []
        ):
            es.indices.delete_index_template(name=template["name"])
        es.close()
        admin = KafkaAdminClient(bootstrap_servers=kafka)
        try:
            admin.delete_topics([t for t in admin.list_topics() if t.startswith(namespace)])
        finally:
            admin.close()


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trending_arxiv.cli.main", *args],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )  # fmt: skip


# -- the field sort against a naive recount ----------------------------------------------------
def _archive(category: str) -> str:
    return category.split(".")[0]


def naive_field_ranking(
    es: Elasticsearch, settings: CommonSettings, as_of: datetime, window: timedelta | None,
    min_papers: int = 5,
) -> list[tuple[str, float, str, int]]:  # fmt: skip
    """(arxiv id, percentile, field, field size) by reading every mention, nothing clever."""
    accounts: dict[str, set[str]] = defaultdict(set)
    recent: set[str] = set()
    category: dict[str, str] = {}
    for hit in scan(es, index=settings.indices.mentions, query={"query": {"match_all": {}}}):
        doc = hit["_source"]
        moment = parse_utc(doc["@timestamp"])
        if moment > as_of:
            continue
        category[doc["arxiv_id"]] = doc.get("primary_category") or ""
        if window is None or moment > as_of - window:
            accounts[doc["arxiv_id"]].add(doc["account"])
        if moment > as_of - timedelta(days=30):
            recent.add(doc["arxiv_id"])

    def members(own: str, level: str) -> list[int]:
        def wanted(other: str) -> bool:
            if level == "category":
                return other == own
            if level == "archive":
                return other != "" and _archive(other) == _archive(own)
            return True

        return [len(accounts.get(p, ())) for p in recent if wanted(category[p])]

    ranking = []
    for paper in accounts:
        own = category[paper]
        population, field = members(own, "category"), own
        if len(population) < min_papers or not own:
            population, field = members(own, "archive"), _archive(own)
            if len(population) < min_papers or not own:
                population, field = members(own, "all"), "*"
        value = len(accounts[paper])
        below = sum(1 for v in population if v < value)
        equal = sum(1 for v in population if v == value)
        percentile = 100 * (below + equal / 2) / len(population)
        ranking.append((paper, percentile, field, len(population), value))
    ranking.sort(key=lambda r: (-r[1], -r[4], r[0]))
    return [(p, round(pct, 4), f, n) for p, pct, f, n, _ in ranking]


def _stream_time(replayed: Replayed) -> datetime:
    newest = replayed.es.search(index=replayed.settings.indices.mentions, size=0,
                                aggs={"t": {"max": {"field": "@timestamp"}}})  # fmt: skip
    return parse_utc(newest["aggregations"]["t"]["value_as_string"])


def test_top_sort_field_matches_a_recount_and_lifts_small_fields(replayed: Replayed) -> None:
    settings, es = replayed.settings, replayed.es
    es.indices.refresh(index=[settings.indices.papers, settings.indices.mentions])
    expected = naive_field_ranking(es, settings, _stream_time(replayed), window=None)

    result = cli(replayed.env, "top", "--sort", "field", "--window", "all", "--limit", "50",
                 "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    got = [(r["arxiv_id"], round(r["field_percentile"], 4), r["field"], r["field_papers"])
           for r in rows]  # fmt: skip
    assert got == expected
    assert len({r["field"] for r in rows}) >= 3  # several fields: categories, archive, all

    # A small-field paper above a larger-field paper with more accounts.
    pairs = [
        (a, b)
        for i, a in enumerate(rows)
        for b in rows[i + 1 :]
        if a["field_papers"] < b["field_papers"] and a["accounts"] < b["accounts"]
    ]
    assert pairs, [(r["arxiv_id"], r["field"], r["accounts"]) for r in rows]

    # Paging walks the same order (pages are found from the histograms; ties of equal
    # percentile and accounts that a page cuts are paged by arXiv id).
    paged: list[str] = []
    for offset in range(0, len(expected), 3):
        page = TrendingQuery(window="all", sort="field", limit=3, offset=offset)
        paged += [row["arxiv_id"] for row in top_papers(es, settings, page)]
    assert paged == [e[0] for e in expected]


def test_field_sort_as_of_a_moment_matches_the_recount(replayed: Replayed) -> None:
    """The mentions path (`as_of`): exact windows, the same answer as the recount."""
    settings, es = replayed.settings, replayed.es
    as_of = datetime.fromisoformat("2016-02-08T20:00:00+00:00")
    for window, span in (("7d", timedelta(days=7)), ("24h", timedelta(hours=24))):
        query = TrendingQuery(window=window, sort="field", limit=100, as_of=as_of)
        rows = top_papers(es, settings, query)
        expected = [e for e in naive_field_ranking(es, settings, as_of, window=span)]
        listed = {p for p, *_ in expected} & {r["arxiv_id"] for r in rows}
        assert [(r["arxiv_id"], round(r["field_percentile"], 4), r["field"], r["field_papers"])
                for r in rows] == [e for e in expected if e[0] in listed]  # fmt: skip
        assert len(rows) == sum(1 for r in rows if r["accounts"] > 0) > 0


def test_api_serves_the_field_sort_and_the_half_life(replayed: Replayed) -> None:
    from fastapi.testclient import TestClient

    from trending_arxiv.web.api import create_api

    api = TestClient(create_api(replayed.settings, replayed.es))
    body = api.get("/api/trending", params={"sort": "field", "window": "all"}).json()
    assert body["sort"] == "field" and body["papers"][0]["field_percentile"] > 0
    as_of = "2016-02-09T12:00:00Z"
    short = api.get("/api/trending", params={"sort": "score", "window": "7d", "as_of": as_of,
                                             "half_life_hours": 1}).json()  # fmt: skip
    long = api.get("/api/trending", params={"sort": "score", "window": "7d", "as_of": as_of,
                                            "half_life_hours": 100}).json()  # fmt: skip
    assert short["half_life_hours"] == 1
    scores = {p["arxiv_id"]: p["trend_score"] for p in short["papers"]}
    assert all(scores[p["arxiv_id"]] <= p["trend_score"] for p in long["papers"])
    assert api.get("/api/trending", params={"half_life_hours": 0}).status_code == 422
    page = api.get("/").text
    assert "How ranking works" in page and "unusual for its field" in page


# -- digests by e-mail -------------------------------------------------------------------------
class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    with socket.socket() as probe:  # a free port (the controller checks it can connect)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def test_daily_digest_emails_the_seed_replay_once(
    replayed: Replayed, smtp_server: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp_server
    env = {**replayed.env, "TRENDING_SMTP_HOST": "127.0.0.1", "TRENDING_SMTP_PORT": str(port),
           "TRENDING_LOG_LEVEL": "DEBUG"}  # fmt: skip
    added = cli(env, "subscriptions", "add", "nlp-digest", "--category", "cs.CL",
                "--keyword", "language model", "--digest", "daily", "--top", "5",
                "--email", ADDRESS)  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = cli(env, "subscriptions", "list", "--json")
    assert "***@example.org" in listed.stdout and ADDRESS not in listed.stdout

    first = cli(env, "subscriptions", "run", "--idle-exit", "3")
    assert first.returncode == 0, first.stderr
    assert len(mailbox.messages) == 1, first.stderr[-3000:]
    recipients, message = mailbox.messages[0]
    assert recipients == [ADDRESS]
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "nlp-digest" in message["Subject"]
    # 1602.02410 first; the papers of the last day of the replay, counts and links.
    assert text.index("Exploring the Limits of Language Modeling") < text.index("arXiv:1512")
    assert text.splitlines()[2].startswith("1. Exploring the Limits of Language Modeling")
    assert "https://arxiv.org/abs/1602.02410" in text and "accounts" in text
    assert '<a href="https://arxiv.org/abs/1602.02410">' in html
    assert "1511.07916" not in text  # cs.CL + language model, but mentioned in November
    assert "1602.02218" not in text  # cs.LG
    # The address reaches the SMTP envelope and the To: header, never a log line.
    assert ADDRESS not in first.stderr + first.stdout + added.stderr + listed.stderr

    again = cli(env, "subscriptions", "run", "--idle-exit", "3")
    assert again.returncode == 0, again.stderr
    assert len(mailbox.messages) == 1  # delivered once, across restarts
    removed = cli(env, "subscriptions", "remove", "nlp-digest")
    assert removed.returncode == 0 and "nlp-digest" not in cli(env, "subscriptions",
                                                               "list").stdout  # fmt: skip


# -- webhook on an accounts trigger -----------------------------------------------------------
class Hook(FakeHttpServer):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def handle(self, request: Request, reply: Reply) -> None:
        reply.send_json(200, {})


def test_webhook_accounts_trigger_fires_once_per_paper_and_hour(
    replayed: Replayed, tmp_path: Path
) -> None:
    settings = replayed.settings
    with Hook() as hook:
        file = tmp_path / "subs.yaml"
        file.write_text(
            "subscriptions:\n"
            "  - name: busy-cs\n"
            "    query: {categories: ['cs.*']}\n"
            "    trigger: {kind: accounts, min_accounts: 3, window: 1h}\n"
            f"    delivery: {{type: webhook, url: '{hook.url}/hook'}}\n"
            "  - name: top-lm\n"
            "    query: {categories: [cs.CL], keywords: ['language model']}\n"
            "    trigger: {kind: top, top: 1, window: 24h}\n"
            f"    delivery: {{type: webhook, url: '{hook.url}/top'}}\n"
            "  - name: fast\n"
            "    query: {arxiv_ids: ['1602.02410', '1601.04589']}\n"
            "    trigger: {kind: velocity, velocity_ratio: 2, velocity_min_posts_1h: 3}\n"
            f"    delivery: {{type: slack, url: '{hook.url}/slack'}}\n"
            "  - name: cs-daily\n"
            "    query: {categories: ['cs']}\n"
            f"    delivery: {{type: webhook, url: '{hook.url}/digest', digest: daily, top: 3}}\n"
        )
        added = cli(replayed.env, "subscriptions", "add", "--file", str(file))
        assert added.returncode == 0, added.stderr

        def run(group: str) -> dict[str, int]:
            service = SubscriptionService(SubscriptionSettings(
                kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
                elasticsearch_url=settings.elasticsearch_url, namespace=settings.namespace,
                subscriptions_group_id=group,
            ))  # fmt: skip
            try:
                return service.run(idle_exit_seconds=3.0)
            finally:
                service.close()

        stats = run("first")
        ids = [request.json()["alert_id"] for request in hook.requests_to("/hook")]
        assert len(ids) == len(set(ids)) > 0, stats
        sent = sum(len(hook.requests_to(p)) for p in ("/hook", "/top", "/slack", "/digest"))
        assert stats["delivered"] == sent and stats["failed"] == 0, stats
        # What the rule says, recounted naively from every mention: each (paper, hour) in
        # which some post had >= 3 distinct accounts within the hour up to it (cs.* papers).
        posts: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        for hit in scan(replayed.es, index=settings.indices.mentions,
                        query={"query": {"prefix": {"categories": "cs."}}}):  # fmt: skip
            doc = hit["_source"]
            posts[doc["arxiv_id"]].append((parse_utc(doc["@timestamp"]), doc["account"]))
        expected = {
            f"busy-cs:{paper}:accounts_1h:{t.strftime('%Y-%m-%dT%H')}"
            for paper, items in posts.items()
            for t, _ in items
            if len({a for u, a in items if t - timedelta(hours=1) < u <= t}) >= 3
        }
        assert set(ids) == expected
        assert any(":1602.02410:" in i for i in ids)
        for request in hook.requests_to("/hook"):
            body = request.json()
            assert body["numbers"]["accounts_1h"] >= 3 and body["paper"]["title"]
            assert request.headers.get("Idempotency-Key") == body["alert_id"]

        # Restarted (same group: nothing new) and re-read from the start (new group): the
        # records in <ns>-alerts keep every alert from going out twice.
        assert run("first")["delivered"] == 0
        replay_stats = run("second")
        assert replay_stats["delivered"] == 0 and replay_stats["skipped"] >= len(ids)
        assert len(hook.requests_to("/hook")) == len(ids)

        # Top 1 of cs.CL + "language model" by accounts in 24h: only 1602.02410 ever is.
        tops = [r.json() for r in hook.requests_to("/top")]
        assert tops and {t["arxiv_id"] for t in tops} == {"1602.02410"}
        assert len({t["alert_id"] for t in tops}) == len(tops)
        # Velocity to Slack: each message a linked title and the reason, once per id.
        slack = hook.requests_to("/slack")
        assert slack and all("x its hourly rate" in r.json()["text"] for r in slack)
        keys = [r.headers.get("Idempotency-Key") for r in slack]
        assert len(set(keys)) == len(keys) and all(":velocity:" in k for k in keys)
        fast = set()  # the rule recounted naively at every post of the two papers
        for paper in ("1602.02410", "1601.04589"):
            times = [t for t, _ in posts[paper]]
            for t in times:
                last_hour = sum(1 for u in times if t - timedelta(hours=1) < u <= t)
                day = sum(1 for u in times if t - timedelta(hours=24) < u <= t - timedelta(hours=1))
                if last_hour >= 3 and last_hour / max(day / 23, 1.0) >= 2:
                    fast.add(f"fast:{paper}:velocity:{t.strftime('%Y-%m-%dT%H')}")
        assert set(keys) == fast
        # A daily digest by webhook: the cs papers of the replay's last whole day.
        (digest,) = [r.json() for r in hook.requests_to("/digest")]
        assert digest["digest_id"] == "cs-daily:digest:2016-02-09T00:00:00Z"
        assert (digest["start"], digest["end"]) == ("2016-02-08T00:00:00Z", "2016-02-09T00:00:00Z")
        assert digest["papers"][0]["arxiv_id"] == "1602.02410" and len(digest["papers"]) == 3
        accounts = [p["accounts"] for p in digest["papers"]]
        assert accounts == sorted(accounts, reverse=True)
    replayed.es.indices.refresh(index=alerts_index(settings))
    stored = replayed.es.count(index=alerts_index(settings),
                               query={"term": {"subscription": "busy-cs"}})  # fmt: skip
    assert stored["count"] == len(ids)
