"""Shared helpers of the pipeline benchmarks: namespaces, processes, lag, memory, results.

Every bench takes a fresh namespace (its own topics, consumer groups and indices), runs
the real worker/sink processes through `trending_arxiv.devstack.pipeline.PipelineProcesses`, and
deletes what it created at the end. Results are JSON files in `bench/results/` carrying
the machine, the versions, the git commit and the parameters.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition
from tenacity import retry, retry_if_exception, stop_after_delay, wait_fixed

from trending_arxiv.core.compiled import native_state
from trending_arxiv.core.envelope import is_envelope
from trending_arxiv.devstack.pipeline import PipelineProcesses, pipeline_env
from trending_arxiv.settings import CommonSettings, SinkSettings, WorkerSettings

ROOT = pathlib.Path(__file__).resolve().parents[1]

RESULTS_DIR = ROOT / "bench" / "results"
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
ES_URL = os.environ.get("ELASTICSEARCH_URL", "http://127.0.0.1:9200")

if native_state() == "stale":
    # Said up front: a run on a stale build measures the Python modules (the result file
    # records it as `compiled_core`, but only once the run is over).
    print(
        "bench: the compiled counting core is stale (a source changed since its build): "
        "this run measures its Python modules; `make native` rebuilds it",
        file=sys.stderr,
    )


# -- namespaces and clean-up -----------------------------------------------------------


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks stop children and clean up."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def fresh_namespace(bench: str) -> str:
    return f"bench-{bench}-{uuid.uuid4().hex[:8]}"


def settings_for(namespace: str) -> CommonSettings:
    return CommonSettings(
        kafka_bootstrap_servers=KAFKA, elasticsearch_url=ES_URL, namespace=namespace
    )


def worker_group(namespace: str) -> str:
    return f"{namespace}-{WorkerSettings(namespace=namespace).worker_id}"


def sink_group(namespace: str) -> str:
    return f"{namespace}-{SinkSettings(namespace=namespace).sink_group_id}"


# A broker that started moments ago answers "coordinator load in progress" (or "not
# available") for a while: its group admin calls are retried.
_retry_while_coordinator_loads = retry(
    retry=retry_if_exception(lambda error: isinstance(error, KafkaError) and error.retriable),
    stop=stop_after_delay(60),
    wait=wait_fixed(0.5),
    reraise=True,
)


@_retry_while_coordinator_loads
def _list_group_offsets(admin: KafkaAdminClient, group: str) -> dict[Any, Any]:
    return dict(admin.list_group_offsets(group).get(group, {}))


@_retry_while_coordinator_loads
def _list_groups(admin: KafkaAdminClient) -> list[dict[str, Any]]:
    return list(admin.list_groups())


def delete_namespace(namespace: str, es: bool = True) -> dict[str, int]:
    """Delete the namespace's topics (Faust changelogs too), groups, indices and templates."""
    removed = {"topics": 0, "groups": 0, "indices": 0}
    admin = KafkaAdminClient(bootstrap_servers=KAFKA, client_id="bench-cleanup")
    try:
        topics = [t for t in admin.list_topics() if t.startswith(namespace)]
        if topics:
            with contextlib.suppress(Exception):
                admin.delete_topics(topics)
                removed["topics"] = len(topics)
        groups = [g["group_id"] for g in _list_groups(admin) if g["group_id"].startswith(namespace)]
        if groups:
            with contextlib.suppress(Exception):
                admin.delete_groups(groups)
                removed["groups"] = len(groups)
    finally:
        admin.close()
    if es:
        from elasticsearch import Elasticsearch

        client = Elasticsearch(ES_URL).options(ignore_status=404)
        found = client.indices.get(index=f"{namespace}-*", expand_wildcards="all")
        removed["indices"] = len(found)
        client.indices.delete(index=f"{namespace}-*", expand_wildcards="all")
        templates = client.indices.get_index_template(name=f"{namespace}-*")
        for template in templates.get("index_templates", []):
            client.indices.delete_index_template(name=template["name"])
    return removed


# -- pipeline processes --------------------------------------------------------------


@dataclass
class Pipeline:
    """Worker/sink child processes of one namespace, their logs in a temporary directory."""

    namespace: str
    work_dir: pathlib.Path
    processes: PipelineProcesses

    def pid(self, name: str) -> int:
        for child_name, process, _ in self.processes.children:
            if child_name == name:
                return process.pid
        raise KeyError(name)

    def stop(self) -> None:
        self.processes.stop()

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.work_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_pipeline(namespace: str, names: Sequence[str], env: dict[str, str]) -> Pipeline:
    """Start `names` ("worker", "sink") as `trending-arxiv` child processes."""
    work_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"trending-{namespace}-"))
    full_env = pipeline_env(KAFKA, ES_URL, namespace, work_dir)
    full_env.update(env)
    processes = PipelineProcesses(env=full_env, log_dir=work_dir)
    for name in names:
        processes.start(name, name)
    return Pipeline(namespace, work_dir, processes)


def remove_dir(path: pathlib.Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# -- Kafka: offsets and lag ------------------------------------------------------------


class LagProbe:
    """Committed offsets of a group against the end offsets of topics (one open client)."""

    def __init__(self, group: str, topics: Sequence[str]) -> None:
        self.group = group
        self.topics = list(topics)
        self.admin = KafkaAdminClient(bootstrap_servers=KAFKA, client_id="bench-lag")
        self.consumer = KafkaConsumer(bootstrap_servers=KAFKA, client_id="bench-lag")
        self.partitions = [
            TopicPartition(t, p)
            for t in self.topics
            for p in sorted(self.consumer.partitions_for_topic(t) or ())
        ]

    def sample(self) -> dict[str, tuple[int, int]]:
        """topic -> (committed, end) summed over partitions."""
        committed = _list_group_offsets(self.admin, self.group)
        ends = self.consumer.end_offsets(self.partitions)
        out: dict[str, tuple[int, int]] = {t: (0, 0) for t in self.topics}
        for tp in self.partitions:
            done = committed.get(tp)
            offset = done.offset if done is not None and done.offset >= 0 else 0
            c, e = out[tp.topic]
            out[tp.topic] = (c + offset, e + ends[tp])
        return out

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


def partition_numbers(topic: str) -> list[int]:
    consumer = KafkaConsumer(bootstrap_servers=KAFKA)
    try:
        return sorted(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def end_offsets(topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=KAFKA)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def bare_consumer_rate(topic: str, expected: int, timeout: float = 300.0) -> dict[str, Any]:
    """kafka-python consumer, no group, reading `topic` from the start until it has seen
    `expected` posts (an envelope counts its posts, as its lines: a reader that only
    splits them); posts/s."""
    consumer = KafkaConsumer(
        bootstrap_servers=KAFKA,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        fetch_max_bytes=52_428_800,
        max_partition_fetch_bytes=10_485_760,
    )
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen = 0
    posts = 0
    size = 0
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    try:
        while posts < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                seen += len(records)
                for record in records:
                    value = record.value or b""
                    size += len(value)
                    posts += value.count(b"\n") + 1 if is_envelope(record.headers) else 1
        elapsed = time.perf_counter() - started
    finally:
        consumer.close()
    return {
        "client": "kafka-python",
        "records": seen,
        "posts": posts,
        "bytes": size,
        "seconds": round(elapsed, 3),
        "posts_per_second": round(posts / elapsed, 1) if elapsed else None,
    }


def aiokafka_consumer_rate(topic: str, expected: int, timeout: float = 300.0) -> dict[str, Any]:
    """aiokafka (what Faust uses underneath) reading `topic` from the start: records/s."""
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as AioTP

    parts = [AioTP(topic, p) for p in partition_numbers(topic)]

    async def run() -> dict[str, Any]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=KAFKA, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            seen = 0
            started = time.perf_counter()
            deadline = time.monotonic() + timeout
            while seen < expected and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                seen += sum(len(records) for records in batches.values())
            elapsed = time.perf_counter() - started
        finally:
            await consumer.stop()
        return {
            "client": "aiokafka",
            "records": seen,
            "seconds": round(elapsed, 3),
            "posts_per_second": round(seen / elapsed, 1) if elapsed else None,
        }

    return asyncio.run(run())


# -- memory of processes ---------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """The process's CPU time so far (user + system, its own threads, not children)."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # Fields 14 and 15 of stat(5), counted from the state (field 3) here.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listener_pid(port: int) -> int | None:
    """PID of the process listening on a TCP port (Kafka, Elasticsearch), via `ss`."""
    try:
        out = subprocess.run(
            ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return None
    match = re.search(r"pid=(\d+)", out)
    return int(match.group(1)) if match else None


def server_pids() -> dict[str, int]:
    pids: dict[str, int] = {}
    kafka_port = int(KAFKA.rsplit(":", 1)[1])
    es_port = int(ES_URL.rstrip("/").rsplit(":", 1)[1])
    for name, port in (("kafka", kafka_port), ("elasticsearch", es_port)):
        pid = listener_pid(port)
        if pid is not None:
            pids[name] = pid
    return pids


@dataclass
class MemorySampler:
    """Samples VmRSS of named processes every `interval` s in a thread; keeps peak, mean
    and the last sample (a peak well above it is transient, not held state), and the
    CPU time each used between its first and last sample."""

    interval: float = 0.5
    pids: dict[str, int] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    total: dict[str, float] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    cpu_first: dict[str, float] = field(default_factory=dict)
    cpu_last: dict[str, float] = field(default_factory=dict)
    # Seconds from the start to each one's peak (a peak at the end is held state).
    peak_at: dict[str, float] = field(default_factory=dict)
    _started: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self.pids[name] = pid

    def start(self) -> MemorySampler:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                watched = dict(self.pids)
            for name, pid in watched.items():
                value = rss_mb(pid)
                if value is None:
                    continue
                if value > self.peak.get(name, 0.0):
                    self.peak[name] = value
                    self.peak_at[name] = time.monotonic() - self._started
                self.total[name] = self.total.get(name, 0.0) + value
                self.samples[name] = self.samples.get(name, 0) + 1
                self.last[name] = value
                used = cpu_seconds(pid)
                if used is not None:
                    self.cpu_first.setdefault(name, used)
                    self.cpu_last[name] = used

    def stop(self) -> dict[str, dict[str, float]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return {
            name: {
                "peak_rss_mb": round(self.peak[name], 1),
                "peak_at_s": round(self.peak_at[name], 1),
                "sampled_s": round(time.monotonic() - self._started, 1),
                "mean_rss_mb": round(self.total[name] / self.samples[name], 1),
                "last_rss_mb": round(self.last[name], 1),
                "samples": self.samples[name],
                "cpu_seconds": round(
                    self.cpu_last.get(name, 0.0) - self.cpu_first.get(name, 0.0), 2
                ),
            }
            for name in self.peak
        }


# -- result files ----------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def server_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"kafka": None, "elasticsearch": None}
    with contextlib.suppress(Exception):
        from elasticsearch import Elasticsearch

        # GET / is not served by the minimal local distribution; node info is.
        nodes = Elasticsearch(ES_URL).nodes.info()["nodes"]
        versions["elasticsearch"] = next(iter(nodes.values()))["version"]
    with contextlib.suppress(Exception):
        admin = KafkaAdminClient(bootstrap_servers=KAFKA, client_id="bench-version")
        try:
            # kafka-python negotiates the broker's API versions; report what it found.
            versions["kafka"] = ".".join(str(p) for p in admin.config["api_version"])
        finally:
            admin.close()
    with contextlib.suppress(Exception):
        status = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "trending-arxiv"), "stack", "status"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        match = re.search(r"kafka\s.*?version\s+(\S+)", status)
        if match:
            versions["kafka"] = match.group(1)
    return versions


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(("MemTotal:", "MemAvailable:")):
                key = "memory_total_mb" if line.startswith("MemTotal") else "memory_available_mb"
                info[key] = int(line.split()[1]) // 1024
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    return info


def versions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "faust-streaming": _version("faust-streaming"),
        "kafka-python": _version("kafka-python"),
        "aiokafka": _version("aiokafka"),
        "elasticsearch-client": _version("elasticsearch"),
        "orjson": _version("orjson"),
        # "fresh": the counting core ran compiled (unless TRENDING_COMPILED=0 was passed
        # to a process); else its Python modules ran.
        "compiled_core": native_state(),
        "servers": server_versions(),
    }


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = git("status", "--porcelain")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status)}


def save_result(name: str, parameters: dict[str, Any], results: dict[str, Any]) -> pathlib.Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    document = {
        "bench": name,
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine_info(),
        "versions": versions(),
        "git": git_commit(),
        "parameters": parameters,
        "results": results,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def print_table(title: str, rows: Iterable[Sequence[Any]], header: Sequence[str]) -> None:
    """A plain-text table (no colour codes, so logs and CI keep it readable)."""
    body = [[_cell(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)
    ]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in body:
        print(
            "  ".join(
                c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)
            )
        )
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,]+(\.\d+)?x?", text))
