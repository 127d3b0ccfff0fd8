"""What the pipeline of one namespace is doing: one function for `up`, `status` and `/healthz`.

`gather_status` reads the state file `trending-arxiv up` keeps (its children: pids,
states, restarts, posts/s in), asks Kafka for each consumer group's lag and
Elasticsearch for the papers counted and the stream's latest event, and returns one
JSON-able dict. Every part answers on its own: Kafka down still shows the processes.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Group
from rich.table import Table
from rich.text import Text

from trending_arxiv.core.models import parse_utc, to_utc_iso
from trending_arxiv.settings import CommonSettings, SinkSettings, WorkerSettings

ALERTS_GROUP_SUFFIX = "trending-arxiv-alerts"  # sinks.alerts.AlertSettings.alerts_group_id


def state_path(settings: CommonSettings) -> Path:
    """Where `up` keeps the state of its children for this namespace."""
    return Path(settings.run_state_dir) / f"{settings.namespace}.json"


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace the state file atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(state, indent=1), encoding="utf-8")
    partial.replace(path)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found


def consumer_groups(settings: CommonSettings) -> dict[str, tuple[str, list[str]]]:
    """Role -> (consumer group, the topics it reads) of the namespace."""
    ns = settings.namespace
    topics = settings.topics
    worker = WorkerSettings(namespace=ns)
    sink = SinkSettings(namespace=ns)
    return {
        "worker": (
            f"{ns}-{worker.worker_id}",
            [topics.raw_posts, topics.routed_posts, topics.mentions],
        ),
        "sink": (f"{ns}-{sink.sink_group_id}", [topics.mentions, topics.counts]),
        "alerts": (f"{ns}-{ALERTS_GROUP_SUFFIX}", [topics.alerts]),
    }


def kafka_status(settings: CommonSettings) -> dict[str, Any]:
    """Lag per consumer group and the raw records taken in so far (end offset of
    posts.raw: an envelope of many posts counts once, so they are not posts)."""
    from kafka.errors import KafkaError

    from trending_arxiv.kafka import consumer_lags

    groups = consumer_groups(settings)
    try:
        lags, ends = consumer_lags(
            settings.kafka_bootstrap_servers,
            {group: topics for group, topics in groups.values()},
            timeout_ms=3_000,
        )
    except (KafkaError, OSError) as error:
        return {"reachable": False, "error": f"{type(error).__name__}: {error}"}
    return {
        "reachable": True,
        "raw_records_in": ends.get(settings.topics.raw_posts, 0),
        "lag": {role: lags.get(group) for role, (group, _) in groups.items()},
        "groups": {role: group for role, (group, _) in groups.items()},
    }


def elasticsearch_status(settings: CommonSettings, es: Any | None = None) -> dict[str, Any]:
    """Papers counted, mentions indexed, the latest event time and the stream's delay."""
    from elasticsearch import ApiError, Elasticsearch, TransportError

    client = es or Elasticsearch(
        **settings.elasticsearch_client_kwargs(), request_timeout=3, max_retries=0
    )
    names = settings.indices
    try:
        papers = client.options(ignore_status=404).search(
            index=names.papers,
            size=0,
            track_total_hits=True,
            query={"range": {"posts.all": {"gt": 0}}},
            aggs={"as_of": {"max": {"field": "counts_as_of"}}},
        )
        mentions = client.options(ignore_status=404).search(
            index=names.mentions,
            size=0,
            track_total_hits=True,
            aggs={"last": {"max": {"field": "@timestamp"}}},
        )
    except (ApiError, TransportError) as error:
        return {"reachable": False, "error": f"{type(error).__name__}: {error}"}
    last_event = _agg_time(mentions, "last")
    now = datetime.now(UTC)
    return {
        "reachable": True,
        "papers_counted": _total(papers),
        "mentions": _total(mentions),
        "counts_as_of": _agg_time(papers, "as_of"),
        "last_event_time": last_event,
        "stream_behind_seconds": (
            round((now - parse_utc(last_event)).total_seconds(), 1) if last_event else None
        ),
    }


def _total(body: Any) -> int:
    hits = body.get("hits") if hasattr(body, "get") else None
    return int(hits["total"]["value"]) if hits else 0


def _agg_time(body: Any, name: str) -> str | None:
    aggs = body.get("aggregations") if hasattr(body, "get") else None
    value = (aggs or {}).get(name, {}).get("value")
    if value is None:
        return None
    return to_utc_iso(datetime.fromtimestamp(value / 1000, tz=UTC))


def process_rows(state: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The children `up` recorded, each checked against the live process table."""
    if not state:
        return []
    rows = []
    for child in state.get("processes", []):
        pid = child.get("pid")
        alive = bool(pid) and psutil.pid_exists(pid) and _not_zombie(pid)
        rows.append({**child, "alive": alive})
    return rows


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gather_status(settings: CommonSettings, es: Any | None = None) -> dict[str, Any]:
    """The whole picture of one namespace, as JSON-able data."""
    state = read_state(state_path(settings))
    up_pid = state.get("pid") if state else None
    up_running = isinstance(up_pid, int) and psutil.pid_exists(up_pid) and _not_zombie(up_pid)
    return {
        "namespace": settings.namespace,
        "checked_at": to_utc_iso(datetime.now(UTC)),
        "up": {
            "pid": up_pid,
            "running": up_running,
            "url": state.get("url") if state else None,
            "started_at": state.get("started_at") if state else None,
            "updated_at": state.get("updated_at") if state else None,
        },
        "processes": process_rows(state),
        "raw_records_per_second": (
            (state or {}).get("raw_records_per_second") if up_running else None
        ),
        "kafka": kafka_status(settings),
        "elasticsearch": elasticsearch_status(settings, es),
    }


class RecordsRate:
    """Records/s into the raw topic over the last `span` seconds, from end-offset samples."""

    def __init__(self, span: float = 10.0) -> None:
        self.span = span
        self.samples: list[tuple[float, int]] = []

    def add(self, records_in: int | None) -> float | None:
        now = time.monotonic()
        if records_in is not None:
            self.samples.append((now, records_in))
        self.samples = [s for s in self.samples if now - s[0] <= self.span] or self.samples[-1:]
        if len(self.samples) < 2:
            return None
        (t0, n0), (t1, n1) = self.samples[0], self.samples[-1]
        return round((n1 - n0) / (t1 - t0), 1) if t1 > t0 else None


def status_table(status: dict[str, Any]) -> Group:
    """The status as a Rich table: one row per process, then the pipeline's figures."""
    kafka = status.get("kafka", {})
    es = status.get("elasticsearch", {})
    lag = kafka.get("lag", {}) if kafka.get("reachable") else {}
    table = Table(title=f"trending-arxiv · namespace {status['namespace']}", expand=False)
    for column in ("process", "pid", "state", "restarts", "lag"):
        table.add_column(
            column, justify="right" if column in ("pid", "restarts", "lag") else "left"
        )
    for row in status.get("processes", []):
        role = row.get("role", row["name"])
        state = row.get("state", "?")
        if state == "running" and not row.get("alive"):
            state = "gone"
        table.add_row(
            row["name"], str(row.get("pid") or "-"), state, str(row.get("restarts", 0)),
            _number(lag.get(role)),
        )  # fmt: skip
    rate = status.get("raw_records_per_second")
    summary = "  ·  ".join(
        [
            f"raw records in {_number(kafka.get('raw_records_in'))}"
            + (f" ({rate:g}/s)" if rate is not None else ""),
            f"papers counted {_number(es.get('papers_counted'))}",
            f"last event {es.get('last_event_time') or '-'}"
            + (
                f" ({_delay(es['stream_behind_seconds'])} behind the wall clock)"
                if es.get("stream_behind_seconds") is not None
                else ""
            ),
            *(["Kafka unreachable"] if not kafka.get("reachable") else []),
            *(["Elasticsearch unreachable"] if not es.get("reachable") else []),
        ]
    )
    return Group(table, Text(summary))


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _delay(seconds: float) -> str:
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.0f} min"
    if abs(seconds) < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
