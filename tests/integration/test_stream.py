"""The Faust worker on the real Kafka: windows at a fixed stream time, repost joins,
deletes, late events, dead letters, alerts, and exact counts after a SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, KafkaProducer

from producers.keys import key_of
from tests.integration.pipeline import (
    settings_for,
    start_pipeline,
    topic_values,
    wait_for_commits,
    wait_for_log,
    wait_for_quiet,
)
from trending_arxiv.core.models import parse_utc
from trending_arxiv.core.simulate import read_lines, simulate
from trending_arxiv.demo import bundled_sample_path
from trending_arxiv.settings import WorkerSettings

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
P1, P2, P3 = "2605.01234", "2605.04321", "2605.05555"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def bsky_post(did: str, rkey: str, at: datetime, arxiv_id: str) -> dict:
    url = f"https://arxiv.org/abs/{arxiv_id}"
    text = f"new paper {url}"
    return {
        "did": did,
        "time_us": int(at.timestamp() * 1e6),
        "kind": "commit",
        "commit": {
            "rev": rkey,
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "cid": f"cid{rkey}",
            "record": {
                "$type": "app.bsky.feed.post",
                "createdAt": iso(at),
                "text": text,
                "facets": [
                    {
                        "index": {"byteStart": 10, "byteEnd": len(text)},
                        "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
                    }
                ],
            },
        },
    }


def bsky_repost(did: str, rkey: str, at: datetime, subject: str) -> dict:
    return {
        "did": did,
        "time_us": int(at.timestamp() * 1e6),
        "kind": "commit",
        "commit": {
            "rev": rkey,
            "operation": "create",
            "collection": "app.bsky.feed.repost",
            "rkey": rkey,
            "cid": f"cid{rkey}",
            "record": {
                "$type": "app.bsky.feed.repost",
                "createdAt": iso(at),
                "subject": {"cid": "x", "uri": subject},
            },
        },
    }


def bsky_delete(did: str, rkey: str, at: datetime) -> dict:
    return {
        "did": did,
        "time_us": int(at.timestamp() * 1e6),
        "kind": "commit",
        "commit": {
            "rev": rkey,
            "operation": "delete",
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
        },
    }


def tweet(tweet_id: str, author: str, at: datetime, arxiv_id: str) -> dict:
    url = f"https://arxiv.org/abs/{arxiv_id}"
    return {
        "data": {
            "id": tweet_id,
            "author_id": author,
            "created_at": iso(at),
            "text": f"read this https://t.co/{tweet_id}",
            "entities": {
                "urls": [
                    {
                        "start": 14,
                        "end": 37,
                        "url": f"https://t.co/{tweet_id}",
                        "expanded_url": url,
                        "display_url": url[8:30],
                    }
                ]
            },
        },
        "includes": {"users": [{"id": author, "username": f"user{author}", "name": "U"}]},
    }


def send(kafka: str, topic: str, events: list[dict | bytes], keyed: bool = False) -> None:
    """Produce `events`; `keyed` keys each by post id as the real producers do."""
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for event in events:
        value = event if isinstance(event, bytes) else json.dumps(event).encode()
        key = key_of(value).key if keyed else None
        producer.send(topic, key=key.encode() if key else None, value=value)
    producer.flush()
    producer.close()


def paper_doc(es: Elasticsearch, index: str, arxiv_id: str) -> dict:
    es.indices.refresh(index=index)
    return es.get(index=index, id=arxiv_id)["_source"]


def wait_for_paper(
    es: Elasticsearch, index: str, arxiv_id: str, ready: Callable[[dict], bool], timeout: float = 30
) -> dict:
    """The paper's document once `ready` holds for it."""
    deadline = time.monotonic() + timeout
    while not ready(doc := paper_doc(es, index, arxiv_id)):
        assert time.monotonic() < deadline, doc
        time.sleep(0.5)
    return doc


def test_windows_joins_deletes_late_events_and_alerts(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    post_a = "at://did:plc:alice/app.bsky.feed.post/a1"
    events: list[dict | bytes] = [
        # A repost that arrives before its subject is credited when the subject comes.
        bsky_repost("did:plc:bob", "r1", NOW - timedelta(minutes=20), post_a),
        bsky_post("did:plc:alice", "a1", NOW - timedelta(minutes=30), P1),
        bsky_repost("did:plc:carol", "r2", NOW - timedelta(minutes=10), post_a),
        # Posted two hours ago, then deleted: counts nowhere.
        bsky_post("did:plc:dave", "b1", NOW - timedelta(hours=2), P1),
        bsky_delete("did:plc:dave", "b1", NOW - timedelta(hours=1)),
        # One account posting three times about P2: three posts, one account.
        tweet("1001", "7", NOW - timedelta(hours=3), P2),
        tweet("1002", "7", NOW - timedelta(days=2), P2),
        tweet("1003", "7", NOW - timedelta(minutes=1), P2),
        b"\xff\xfe not utf-8 at all",
        b'{"kind": "commit", "did": 42}',
    ]
    processes = start_pipeline(
        namespace,
        kafka,
        es_url,
        tmp_path,
        TRENDING_ALERT_MIN_ACCOUNTS_1H="3",
        TRENDING_COUNTS_REFRESH_SECONDS="2",
    )
    try:
        send(kafka, settings.topics.raw_posts, events)
        wait_for_quiet(settings)
        # Late events: 10 days old, then the newest post, which fixes stream time at NOW.
        send(
            kafka,
            settings.topics.raw_posts,
            [
                tweet("1004", "8", NOW - timedelta(days=10), P1),
                # In the 1h window at NOW; out of it as soon as stream time passes NOW.
                tweet("1006", "6", NOW - timedelta(minutes=59, seconds=30), P3),
                tweet("1005", "9", NOW, P1),
            ],
        )
        wait_for_quiet(settings)
        es = Elasticsearch(es_url)
        # Stream time is a watermark: the minimum over the partitions of each one's newest
        # post, so P1 may first be counted as of a lagging partition's time; the refresh
        # re-sends it once stream time passes its newest post (NOW ends a minute: from
        # just before NOW on, the windows are those at NOW), and after every partition is
        # idle stream time moves on by the wall-clock time.
        want_posts = {"1h": 4, "24h": 4, "7d": 4, "30d": 5, "all": 5}
        p1 = wait_for_paper(es, settings.indices.papers, P1, lambda d: d["posts"] == want_posts)
        as_of = parse_utc(p1["counts_as_of"])
        assert NOW - timedelta(minutes=1) < as_of < NOW + timedelta(minutes=5)
        assert p1["posts"] == {"1h": 4, "24h": 4, "7d": 4, "30d": 5, "all": 5}
        assert p1["accounts"] == {"1h": 4, "24h": 4, "7d": 4, "30d": 5, "all": 5}
        # P2 too may first be counted as of a lagging partition's time, before its newest
        # post (then in no window yet); P1 can be final before P2's refresh is written.
        p2 = wait_for_paper(es, settings.indices.papers, P2, lambda d: d["posts"]["24h"] == 2)
        assert p2["posts"]["all"] == 3 and p2["accounts"]["all"] == 1
        assert p2["posts"]["7d"] == 3  # the 2-day-old post is out of 24h only

        es.indices.refresh(index=settings.indices.mentions)
        ids = {
            h["_id"] for h in es.search(index=settings.indices.mentions, size=100)["hits"]["hits"]
        }
        assert f"at://did:plc:dave/app.bsky.feed.post/b1|{P1}" not in ids
        assert f"at://did:plc:bob/app.bsky.feed.repost/r1|{P1}" in ids

        letters = _read(kafka, settings.topics.dead_letter, 2)
        assert all(letter["stage"] == "parse" and letter["reason"] for letter in letters)
        assert any("UTF-8" in letter["reason"] or "utf-8" in letter["reason"] for letter in letters)
        alerts = _read(kafka, settings.topics.alerts, 1)
        assert alerts[0]["arxiv_id"] == P1 and alerts[0]["rule"] == "accounts_1h"
        alert_ids = [a["alert_id"] for a in alerts]
        assert len(alert_ids) == len(set(alert_ids))  # one per paper, rule and hour bucket

        # No new posts: the refresh timer republishes a paper once one of its windows
        # changes (P3's post leaves the 1h window), and only then (P1's stay as they are).
        deadline = time.monotonic() + 30
        while (p3 := paper_doc(es, settings.indices.papers, P3))["posts"]["1h"]:
            assert time.monotonic() < deadline, p3
            time.sleep(0.5)
        assert p3["posts"] == {"1h": 0, "24h": 1, "7d": 1, "30d": 1, "all": 1}
        # Sent by the timer, after stream time (compared as times: ISO strings with and
        # without fractions of a second do not sort as times do).
        assert parse_utc(p3["counts_as_of"]) > NOW
        time.sleep(3)  # a refresh every 2 s
        assert paper_doc(es, settings.indices.papers, P1)["counts_as_of"] == p1["counts_as_of"]
    finally:
        processes.stop()


def test_repost_whose_subject_never_comes_is_dropped_after_the_wait(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    """The bounded wait: a pending repost expires; one whose subject comes is credited."""
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    late_subject = "at://did:plc:alice/app.bsky.feed.post/s1"
    prompt_subject = "at://did:plc:erin/app.bsky.feed.post/t1"
    processes = start_pipeline(
        namespace,
        kafka,
        es_url,
        tmp_path,
        TRENDING_REPOST_JOIN_WAIT_SECONDS="2",
        TRENDING_REPOST_EXPIRY_CHECK_SECONDS="1",
    )
    try:
        send(kafka, settings.topics.raw_posts, [
            bsky_repost("did:plc:bob", "r1", NOW - timedelta(minutes=5), late_subject),
        ], keyed=True)  # fmt: skip
        wait_for_quiet(settings)
        time.sleep(6)  # idle: stream time moves on past the 2 s wait; the sweep runs
        send(kafka, settings.topics.raw_posts, [
            bsky_post("did:plc:alice", "s1", NOW - timedelta(minutes=10), P1),
            bsky_repost("did:plc:carol", "r2", NOW - timedelta(minutes=4), prompt_subject),
            bsky_post("did:plc:erin", "t1", NOW - timedelta(minutes=6), P2),
        ], keyed=True)  # fmt: skip
        wait_for_quiet(settings)
        es = Elasticsearch(es_url)
        assert indexed_posts_by_paper(es, settings.indices.papers) == {P1: 1, P2: 2}
    finally:
        processes.stop()


def test_dedupe_entries_past_the_retention_are_forgotten_in_their_own_partition(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    """The ledger is bounded: once stream time is past a post's retention, its entry is
    deleted, by a changelog tombstone in the partition that holds it (so a restart does
    not bring it back); a recent post's entry stays."""
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    processes = start_pipeline(
        namespace, kafka, es_url, tmp_path,
        TRENDING_DEDUPE_RETENTION_DAYS="1", TRENDING_DEDUPE_PRUNE_SECONDS="1",
    )  # fmt: skip
    old, recent = (
        "at://did:plc:alice/app.bsky.feed.post/o1",
        "at://did:plc:bob/app.bsky.feed.post/n1",
    )
    try:
        send(kafka, settings.topics.raw_posts, [
            bsky_post("did:plc:alice", "o1", NOW - timedelta(days=3), P1),
        ], keyed=True)  # fmt: skip
        wait_for_quiet(settings)
        send(kafka, settings.topics.raw_posts, [
            bsky_post("did:plc:bob", "n1", NOW, P2),  # stream time moves 3 days on
        ], keyed=True)  # fmt: skip
        wait_for_quiet(settings)
        worker = WorkerSettings(namespace=namespace)
        changelog = f"{namespace}-{worker.worker_id}-ledger-changelog"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            records = changelog_records(kafka, changelog)
            if records.get(f"post:{old}", [(None, b"")])[-1][1] is None:
                break
            time.sleep(1)
        partitions_of_old = {partition for partition, _ in records[f"post:{old}"]}
        assert records[f"post:{old}"][-1][1] is None, records[f"post:{old}"]
        assert len(partitions_of_old) == 1  # the delete went where the entry lives
        assert records[f"post:{recent}"][-1][1] is not None
        es = Elasticsearch(es_url)
        assert indexed_posts_by_paper(es, settings.indices.papers) == {P1: 1, P2: 1}
    finally:
        processes.stop()


def changelog_records(kafka: str, topic: str) -> dict[str, list[tuple[int, bytes | None]]]:
    """Every record of a Faust changelog: decoded key -> [(partition, value)] in order."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=kafka, auto_offset_reset="earliest", consumer_timeout_ms=3000
    )
    found: dict[str, list[tuple[int, bytes | None]]] = {}
    for record in consumer:
        found.setdefault(json.loads(record.key), []).append((record.partition, record.value))
    consumer.close()
    return found


def indexed_posts_by_paper(es: Elasticsearch, index: str) -> dict[str, int]:
    """All-time posts of every paper document, after a refresh."""
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=1000)["hits"]["hits"]
    return {h["_id"]: h["_source"]["posts"]["all"] for h in hits}


def _read(kafka: str, topic: str, at_least: int) -> list[dict]:
    found = topic_values(kafka, topic)
    assert len(found) >= at_least, f"{topic}: {found}"
    return found


def test_worker_killed_mid_replay_ends_with_a_clean_runs_counts(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    """SIGKILL the worker (and the sink) at random points; the counts stay exact."""
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    lines = list(read_lines([bundled_sample_path()]))
    reference = simulate(lines)
    rng = random.Random(7)
    processes = start_pipeline(namespace, kafka, es_url, tmp_path)
    try:
        chunks = [lines[i : i + 40] for i in range(0, len(lines), 40)]
        for number, chunk in enumerate(chunks):
            send(kafka, settings.topics.raw_posts, list(chunk))
            time.sleep(rng.uniform(0.2, 2.0))
            if number in (1, 3):
                victim = "worker" if number == 1 else "sink"
                if victim == "worker":
                    # Killed once its tables hold state: the restart must recover them.
                    group = f"{namespace}-{WorkerSettings().worker_id}"
                    wait_for_commits(kafka, group, settings.topics.mentions)
                for name, process, _ in processes.children:
                    if name == victim:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()
                processes.children = [c for c in processes.children if c[0] != victim]
                processes.start(f"{victim}-restarted-{number}", victim)
        wait_for_quiet(settings, timeout=180)
        es = Elasticsearch(es_url)
        assert indexed_posts_by_paper(es, settings.indices.papers) == reference.posts_by_paper
        es.indices.refresh(index=settings.indices.mentions)
        assert es.count(index=settings.indices.mentions)["count"] == len(reference.mention_ids)
        restarted = (tmp_path / "worker-restarted-1.log").read_text(errors="replace")
        assert "Error in recovery" not in restarted
    finally:
        processes.stop()


def test_two_workers_split_the_partitions_and_count_exactly(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    """Scale-out: a second worker in the same namespace takes half the partitions."""
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    lines = list(read_lines([bundled_sample_path()]))
    reference = simulate(lines)
    processes = start_pipeline(namespace, kafka, es_url, tmp_path)
    try:
        send(kafka, settings.topics.raw_posts, list(lines[:100]), keyed=True)
        processes.start("worker-2", "worker")
        # Joined, assigned its partitions and recovered their tables (on a loaded machine
        # that takes longer than the first worker needs for the whole sample).
        wait_for_log(tmp_path / "worker-2.log", "Ready", timeout=150)
        send(kafka, settings.topics.raw_posts, list(lines[100:]), keyed=True)
        wait_for_quiet(settings, timeout=180)
        processes.check_alive()
        es = Elasticsearch(es_url)
        assert indexed_posts_by_paper(es, settings.indices.papers) == reference.posts_by_paper
        # Posts keyed by post id are deduped in place; only re-keyed ones (reposts that
        # wait for their subject) take the routing hop, beside the workers' progress
        # reports for repost expiry.
        routed = _read(kafka, settings.topics.routed_posts, at_least=1)
        reports = [record for record in routed if record.get("type") == "progress"]
        assert 0 < len(routed) - len(reports) < len(lines) // 10
        reported = {int(raw) for report in reports for raw in report["raw"]}
        assert reported == set(range(settings.topic_partitions))
    finally:
        processes.stop()
