"""Benchmark (issue 8): latency at a fixed rate, produce -> counted and searchable in ES.

For each configuration (default settings, then tuned refresh/flush/batch timeouts), in a
fresh namespace on the real servers: start the worker and the sink, warm up with one
probe, then send corpus posts at a fixed rate (default 500 posts/s for 30 s) with the
project's Kafka writer. Every tenth post is a probe citing a brand-new arXiv ID; a poller
asks Elasticsearch every 50 ms for the outstanding probes. A probe's latency runs from
just before it is handed to the producer until its paper has posts.all >= 1 *and* its
mention is searchable (both indices). Reports p50/p90/p99/max per configuration.
Goal: p50 <= 1.2 s, p99 <= 2 s. Every two seconds a burst of posts makes a new paper take
off: its alert's latency runs from the post that fired it to the alerts topic
(`bench.probes`). Event times follow the corpus (replayed history) or, with
`--live`, the wall clock. Writes bench/results/latency.json.

    python -m bench.bench_latency [--rate R] [--seconds S] [--configs default,tuned] [--live]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from bench import common
from bench.bench_e2e import wait_ready
from bench.corpus import SPAN, START, generate
from bench.probes import AlertProbes, probe_id, probe_post
from producers.kafka_writer import RawPostWriter
from producers.keys import key_of
from producers.metrics import ProducerMetrics
from producers.settings import ProducerSettings
from trending_arxiv.kafka import ensure_topics
from trending_arxiv.settings import CommonSettings

GOAL_P50 = 1.2
GOAL_P99 = 2.0
PROBE_EVERY = 10
# An alert burst (`bench.probes`) every this many seconds of sending.
ALERT_EVERY_SECONDS = 2.0
POLL_SECONDS = 0.05

# The shipped defaults (trending_arxiv.settings): ES refresh 500 ms, sink poll 0.2 s,
# Faust batches of at most 0.1 s.
_DEFAULTS = {
    "TRENDING_SINK_REFRESH_INTERVAL": "500ms",
    "TRENDING_SINK_FLUSH_SECONDS": "0.2",
    "TRENDING_BATCH_TIMEOUT_SECONDS": "0.1",
}

CONFIGS: dict[str, dict[str, str]] = {
    "default": _DEFAULTS,
    # The defaults with the worker's batches waiting up to 0.3 s: fewer count passes and
    # paper updates a post at high rates (a backfill's setting), more latency.
    "long-batches": {**_DEFAULTS, "TRENDING_BATCH_TIMEOUT_SECONDS": "0.3"},
    # Twice the waits (the defaults before): less refresh work, more latency.
    "relaxed": {
        "TRENDING_SINK_REFRESH_INTERVAL": "1s",
        "TRENDING_SINK_FLUSH_SECONDS": "0.5",
        "TRENDING_BATCH_TIMEOUT_SECONDS": "0.2",
    },
    # Shortest waits everywhere a record can sit: ES refresh, sink poll, Faust batching
    # (small batches cost the worker more per post: it can fall behind at high rates).
    "tuned": {
        "TRENDING_SINK_REFRESH_INTERVAL": "250ms",
        "TRENDING_SINK_FLUSH_SECONDS": "0.05",
        "TRENDING_BATCH_TIMEOUT_SECONDS": "0.02",
    },
}


@dataclass
class Probes:
    """Send and first-seen times of probe papers; polled by a thread."""

    sent: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def outstanding(self) -> list[str]:
        with self.lock:
            return [a for a in self.sent if a not in self.seen]

    def mark(self, arxiv_ids: set[str], moment: float) -> None:
        with self.lock:
            for arxiv_id in arxiv_ids:
                self.seen.setdefault(arxiv_id, moment)


def searchable(es: Elasticsearch, settings: CommonSettings, ids: list[str]) -> set[str]:
    """Those of `ids` counted on the papers index and with a searchable mention."""
    papers = es.search(
        index=settings.indices.papers,
        query={
            "bool": {"filter": [{"ids": {"values": ids}}, {"range": {"posts.all": {"gte": 1}}}]}
        },
        source=False,
        size=len(ids),
    )["hits"]["hits"]
    counted = {h["_id"] for h in papers}
    if not counted:
        return set()
    mentions = es.search(
        index=settings.indices.mentions,
        query={"terms": {"arxiv_id": sorted(counted)}},
        source_includes=["arxiv_id"],
        size=len(counted) * 2,
    )["hits"]["hits"]
    return {h["_source"]["arxiv_id"] for h in mentions} & counted


def poll(
    es: Elasticsearch,
    settings: CommonSettings,
    probes: Probes,
    stop: threading.Event,
    errors: list[str],
) -> None:
    while not stop.is_set():
        ids = probes.outstanding()
        if ids:
            try:
                found = searchable(es, settings, ids)
            except Exception as error:  # indices appear when the sink starts
                errors.append(f"{type(error).__name__}: {error}"[:200])
                found = set()
            if found:
                probes.mark(found, time.monotonic())
        stop.wait(POLL_SECONDS)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _max_by_second(probes: Probes) -> list[float | None]:
    if not probes.sent:
        return []
    start = min(probes.sent.values())
    worst: dict[int, float] = {}
    for arxiv_id, sent in probes.sent.items():
        second = int(sent - start)
        latency = probes.seen[arxiv_id] - sent if arxiv_id in probes.seen else float("inf")
        worst[second] = max(worst.get(second, 0.0), latency)
    return [_round(worst.get(k)) for k in range(max(worst) + 1)]


def send_at_rate(
    writer: RawPostWriter,
    probes: Probes,
    alerts: AlertProbes,
    rate: float,
    total: int,
    seed: int,
    live: bool,
) -> float:
    """Send `total` corpus posts at `rate`, a count probe every `PROBE_EVERY` and an
    alert burst every `ALERT_EVERY_SECONDS`; the most the sender fell behind (s).

    Event times follow the corpus (replayed history: a week in the run) or, `live`, the
    wall clock."""

    def event_time(i: int) -> datetime:
        return datetime.now(UTC) if live else START + SPAN * (i / total)

    background = generate(total, seed, when_of=event_time)
    alert_every = max(1, int(rate * ALERT_EVERY_SECONDS))
    started = time.monotonic()
    behind = 0.0
    for i in range(total):
        due = started + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            behind = max(behind, -delay)
        line = next(background)
        if i % PROBE_EVERY == 0:
            arxiv_id = probe_id(i // PROBE_EVERY)
            _, line = probe_post(i, arxiv_id, event_time(i))
            with probes.lock:
                probes.sent[arxiv_id] = time.monotonic()
        writer.send(line, key_of(line).key, "x" if line.startswith(b'{"data"') else "bluesky")
        if i % alert_every == alert_every // 2:
            for burst_line in alerts.burst(i // alert_every, event_time(i)):
                writer.send(burst_line, key_of(burst_line).key, "x")
    writer.flush(30)
    return behind


def alert_summary(alerts: AlertProbes) -> dict[str, Any]:
    """Bursts sent, papers alerted, and each rule's latency percentiles (seconds)."""
    by_rule = alerts.latencies()
    return {
        "bursts": len(alerts.papers),
        "papers_alerted": len({paper for paper, _ in alerts.seen} & set(alerts.papers)),
        "rules": {
            rule: {
                "alerts": len(values),
                "p50": _round(percentile(values, 50)),
                "p99": _round(percentile(values, 99)),
                "max": _round(max(values)),
            }
            for rule, values in sorted(by_rule.items())
        },
    }


def measure(
    config: str,
    env: dict[str, str],
    rate: float,
    seconds: float,
    seed: int,
    drain: float,
    live: bool = False,
) -> dict[str, Any]:
    namespace = common.fresh_namespace(f"lat-{config}")
    settings = common.settings_for(namespace)
    print(f"bench_latency[{config}]: namespace {namespace}, {rate:.0f} posts/s for {seconds:.0f}s")
    es = Elasticsearch(common.ES_URL, request_timeout=30)
    probes = Probes()
    stop = threading.Event()
    errors: list[str] = []
    poller = threading.Thread(target=poll, args=(es, settings, probes, stop, errors), daemon=True)
    producer_settings = ProducerSettings(
        kafka_bootstrap_servers=common.KAFKA, namespace=namespace, kafka_linger_ms=5
    )
    writer = RawPostWriter(producer_settings, ProducerMetrics("bench"), client_id="bench-latency")
    pipeline = None
    memory = common.MemorySampler()
    alerts = AlertProbes(common.KAFKA, settings.topics.alerts)
    result: dict[str, Any] = {"namespace": namespace, "env": env, "live": live}
    try:
        ensure_topics(settings)
        pipeline = common.start_pipeline(namespace, ["worker", "sink"], env)
        memory.watch("worker", pipeline.pid("worker"))
        memory.watch("sink", pipeline.pid("sink"))
        memory.start()
        result["startup_seconds"] = round(wait_ready(pipeline, es, settings), 2)
        writer.connect()
        poller.start()
        # Warm-up: one probe through the whole chain (partitions assigned, clients hot).
        warm_id = probe_id(9999)
        _, line = probe_post(9999, warm_id, START)
        probes.sent[warm_id] = time.monotonic()
        writer.send(line, key_of(line).key, "x")
        writer.flush(10)
        deadline = time.monotonic() + 120
        while warm_id not in probes.seen and time.monotonic() < deadline:
            pipeline.processes.check_alive()
            time.sleep(0.05)
        if warm_id not in probes.seen:
            raise RuntimeError(f"warm-up probe not searchable after 120s ({errors[-1:]})")
        result["warmup_seconds"] = round(probes.seen[warm_id] - probes.sent[warm_id], 3)
        with probes.lock:
            probes.sent.clear()
            probes.seen.clear()
        total = int(rate * seconds)
        alerts.start()
        started = time.monotonic()
        behind = send_at_rate(writer, probes, alerts, rate, total, seed, live)
        send_seconds = time.monotonic() - started
        drain_deadline = time.monotonic() + drain
        while (probes.outstanding() or alerts.outstanding()) and time.monotonic() < drain_deadline:
            pipeline.processes.check_alive()
            time.sleep(0.1)
    finally:
        stop.set()
        alerts.stop()
        if poller.is_alive():
            poller.join(5)
        writer.close(10)
        result["memory"] = memory.stop()
        if pipeline is not None:
            pipeline.stop()
            common.remove_dir(pipeline.work_dir)
        common.delete_namespace(namespace)
    latencies = [probes.seen[a] - t for a, t in probes.sent.items() if a in probes.seen]
    # Probes never seen within the drain time count as slower than any seen one, so the
    # percentiles are not flattered by dropping them (None: beyond the measured range).
    censored = latencies + [float("inf")] * (len(probes.sent) - len(latencies))
    result.update(
        posts_sent=total,
        send_seconds=round(send_seconds, 2),
        achieved_rate=round(total / send_seconds, 1),
        producer_max_behind_seconds=round(behind, 3),
        probes=len(probes.sent),
        probes_seen=len(latencies),
        p50=_round(percentile(censored, 50)),
        p90=_round(percentile(censored, 90)),
        p99=_round(percentile(censored, 99)),
        max=_round(max(latencies) if latencies else None),
        mean=_round(statistics.fmean(latencies) if latencies else None),
        poll_errors=errors[:3],
        alerts=alert_summary(alerts),
        # Worst latency of the probes sent in each second: shows stalls, not just spread.
        max_by_send_second=_max_by_second(probes),
    )
    result["goal_met"] = bool(
        result["probes_seen"] == result["probes"]
        and result["p50"] is not None
        and result["p50"] <= GOAL_P50
        and result["p99"] is not None
        and result["p99"] <= GOAL_P99
    )
    return result


def _round(value: float | None) -> float | None:
    return None if value is None or value == float("inf") else round(value, 3)


def print_result(results: dict[str, dict[str, Any]]) -> None:
    rows = [
        (
            name,
            r["achieved_rate"],
            f"{r['probes_seen']}/{r['probes']}",
            r["p50"],
            r["p90"],
            r["p99"],
            r["max"],
            "met" if r["goal_met"] else "NOT met",
        )
        for name, r in results.items()
    ]
    common.print_table(
        f"Latency produce -> counted and searchable in ES (seconds; goal p50 <= {GOAL_P50}, "
        f"p99 <= {GOAL_P99})",
        rows,
        ("config", "posts/s", "probes", "p50", "p90", "p99", "max", "goal"),
    )
    for name, r in results.items():
        settings = ", ".join(f"{k}={v}" for k, v in r["env"].items())
        print(f"  {name}: {settings}")
    alert_rows = [
        (name, f"{r['alerts']['papers_alerted']}/{r['alerts']['bursts']}", rule, row["alerts"],
         row["p50"], row["p99"], row["max"])
        for name, r in results.items()
        for rule, row in r["alerts"]["rules"].items()
    ]  # fmt: skip
    common.print_table(
        "Alert latency: the firing post's send -> its alert on the alerts topic (seconds)",
        alert_rows,
        ("config", "papers", "rule", "alerts", "p50", "p99", "max"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--drain", type=float, default=60.0, help="Seconds to wait for probes after sending."
    )
    parser.add_argument(
        "--configs",
        default="default,long-batches,relaxed,tuned",
        help=f"Comma-separated, from: {', '.join(CONFIGS)}.",
    )
    parser.add_argument("--name", default="latency", help="Result file name (bench/results/).")
    parser.add_argument(
        "--live",
        action="store_true",
        help="Event times are the wall clock (live traffic), not the corpus's week: alerts "
        "then wait for the watermark to pass in real time.",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=10.0,
        help="Seconds of an untimed first run (0: none): the first run after the stack "
        "starts is Elasticsearch's warm-up (p99 2.5 s, then 0.9 s; session 21).",
    )
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown or not names:
        parser.error(f"unknown config(s) {unknown}; choose from {list(CONFIGS)}")
    if not (0 < args.rate <= 20_000) or not (1 <= args.seconds <= 600):
        parser.error("--rate must be in (0, 20000] and --seconds in [1, 600]")
    if not 0 <= args.warmup <= 600:
        parser.error("--warmup must be in [0, 600]")
    if args.warmup:
        first = names[0]
        warm = measure(
            first, CONFIGS[first], args.rate, args.warmup, args.seed, args.drain, args.live
        )
        print(f"warm-up ({first}, {args.warmup:g} s, not counted): p99 {warm.get('p99')}")
    results = {
        c: measure(c, CONFIGS[c], args.rate, args.seconds, args.seed, args.drain, args.live)
        for c in names
    }
    print_result(results)
    params = {
        "drain": args.drain,
        "rate": args.rate,
        "seconds": args.seconds,
        "seed": args.seed,
        "warmup": args.warmup,
        "live": args.live,
        "alert_every_seconds": ALERT_EVERY_SECONDS,
        "probe_every": PROBE_EVERY,
        "poll_seconds": POLL_SECONDS,
        "configs": CONFIGS,
    }
    path = common.save_result(args.name, params, results)
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
