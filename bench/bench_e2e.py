"""Benchmark (issue 8): N posts through producer -> Kafka -> Faust -> sink -> Elasticsearch.

In one run, on the real servers, in a fresh namespace:
1. the reference answer: `trending_arxiv.core.simulate` over the same corpus, in process
   (its time is reported too: the pipeline's logic without Kafka, Faust or ES);
2. the worker and the sink start (`trending-arxiv worker`, `trending-arxiv sink`); once
   both are up (start-up excluded), the replay producer (`trending-arxiv produce
   replay`) sends the corpus; the clock runs from its start until Elasticsearch holds
   every mention and every paper's all-time count equals the reference (checked exactly,
   paper by paper, at the end), then the alerts topic is read against the reference's
   alerts, by alert id;
3. baseline: a bare kafka-python consumer reads the same raw topic from the start;
4. memory: VmRSS of the worker, sink, producer, Kafka and Elasticsearch sampled from
   /proc every 0.5 s (peak and mean).

A time budget (`--timeout`) bounds the run: if the pipeline has not counted everything
by then, the rate so far is reported and the result is marked incomplete.
Prints tables; writes bench/results/e2e.json.

    python -m bench.bench_e2e [--posts N] [--env KEY=VALUE ...] [--timeout S]
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import statistics
import subprocess
import sys
import time
from typing import Any

from elasticsearch import Elasticsearch

from bench import common
from bench.bench_worker import parse_env
from bench.corpus import cached_corpus
from bench.e2e_checks import alert_check, exact_check, index_work, progress
from bench.es_alone import compare_stages
from trending_arxiv.core.simulate import read_lines, simulate
from trending_arxiv.kafka import ensure_topics
from trending_arxiv.settings import CommonSettings, WorkerSettings

GOAL_RATE = 10_000.0
GOAL_RATIO = 0.5


def wait_ready(
    pipeline: common.Pipeline, es: Elasticsearch, settings: CommonSettings, timeout: float = 120.0
) -> float:
    """Seconds until every worker says Ready and the sink has created its indices."""
    started = time.monotonic()
    logs = [pipeline.work_dir / f"{name}.log"
            for name, _, _ in pipeline.processes.children if name.startswith("worker")]  # fmt: skip
    while time.monotonic() - started < timeout:
        pipeline.processes.check_alive()
        worker_ready = all(
            log.exists() and "Ready" in log.read_text(errors="replace") for log in logs
        )
        if worker_ready and es.indices.exists(index=settings.indices.mentions):
            return time.monotonic() - started
        time.sleep(0.25)
    raise RuntimeError(f"pipeline not ready after {timeout}s; logs in {pipeline.work_dir}")


def _worker_metrics(log: pathlib.Path) -> dict[str, Any] | None:
    """The worker's last logged metrics (expired reposts, duplicates, ...), if any."""
    found = None
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            if "; metrics {" in line:
                found = line.split("; metrics ", 1)[1].strip()
    if found is None:
        return None
    try:
        value = ast.literal_eval(found)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, dict) else None


def run(
    n: int,
    seed: int,
    env: dict[str, str],
    timeout: float,
    workers: int = 1,
    es_alone: bool = False,
    stage_repeats: int = 3,
) -> dict[str, Any]:
    namespace = common.fresh_namespace("e2e")
    settings = common.settings_for(namespace)
    print(f"bench_e2e: namespace {namespace}, {n} posts")
    path = cached_corpus(n, seed)
    started = time.perf_counter()
    reference = simulate(read_lines([path]), alert_rules=WorkerSettings().alert_rules())
    simulate_seconds = time.perf_counter() - started
    expected_mentions = len(reference.mention_ids)
    expected_posts = reference.posts_by_paper
    expected_sum = sum(expected_posts.values())
    print(
        f"  reference: {expected_mentions} mentions of {len(expected_posts)} papers "
        f"({n / simulate_seconds:.0f} posts/s in process)"
    )
    es = Elasticsearch(common.ES_URL, request_timeout=30)
    memory = common.MemorySampler()
    for name, pid in common.server_pids().items():
        memory.watch(name, pid)
    memory.start()
    pipeline = None
    producer = None
    curve: list[tuple[float, int, int]] = []
    result: dict[str, Any] = {"namespace": namespace}
    try:
        ensure_topics(settings)
        pipeline = common.start_pipeline(namespace, ["worker", "sink"], env)
        memory.watch("worker", pipeline.pid("worker"))
        for k in range(2, workers + 1):  # scale-out: the same app, partitions split
            pipeline.processes.start(f"worker-{k}", "worker")
            memory.watch(f"worker-{k}", pipeline.pid(f"worker-{k}"))
        memory.watch("sink", pipeline.pid("sink"))
        result["startup_seconds"] = round(wait_ready(pipeline, es, settings), 2)
        producer_log = (pipeline.work_dir / "producer.log").open("wb")
        t0 = time.monotonic()
        producer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "trending_arxiv.cli.main",
                "produce",
                "replay",
                str(path),
                "--no-progress",
                "--json",
            ],
            env=pipeline.processes.env,
            stdout=subprocess.PIPE,
            stderr=producer_log,
        )
        memory.watch("producer", producer.pid)
        topics = settings.topics
        lag_probes = [
            common.LagProbe(
                common.worker_group(namespace),
                [topics.raw_posts, topics.routed_posts, topics.mentions],
            ),
            common.LagProbe(common.sink_group(namespace), [topics.mentions, topics.counts]),
        ]
        producer_seconds = None
        complete = matches = False
        last_change = 0.0
        quiet_checks = 0
        next_lag_check = 0.0
        while True:
            now = time.monotonic() - t0
            if producer_seconds is None and producer.poll() is not None:
                producer_seconds = now
                if producer.returncode != 0:
                    raise RuntimeError(f"producer exited with {producer.returncode}")
            pipeline.processes.check_alive()
            mentions, total = progress(es, settings)
            if not curve or curve[-1][1:] != (mentions, total):
                last_change = now
            curve.append((now, mentions, total))
            if mentions == expected_mentions and total == expected_sum:
                complete = matches = True
                break
            # Settled without matching the reference: every group caught up, ES unchanged.
            if producer_seconds is not None and now >= next_lag_check:
                next_lag_check = now + 1.0
                lagging = any(c != e for p in lag_probes for c, e in p.sample().values())
                quiet_checks = 0 if lagging or now - last_change < 2.5 else quiet_checks + 1
                if quiet_checks >= 3:
                    complete = True
                    break
            if now > timeout:
                break
            time.sleep(0.25)
        for lag_probe in lag_probes:
            lag_probe.close()
        if complete:
            result["alerts"] = alert_check(settings.topics.alerts, reference.alerts)
        if complete and not matches:
            curve.append((last_change, *curve[-1][1:]))  # the pipeline finished then
        elapsed = curve[-1][0]
        summary = producer.communicate(timeout=60)[0] if producer.poll() is not None else b""
        # Posts fully processed so far: the share of the slower of indexing and counting.
        done_share = (
            1.0
            if complete
            else min(curve[-1][1] / max(1, expected_mentions), curve[-1][2] / max(1, expected_sum))
        )
        rate = n * done_share / elapsed if elapsed else None
        result.update(
            complete=complete,
            matches_reference=matches,
            seconds=round(elapsed, 2),
            posts_per_second=round(rate, 1) if rate else None,
            producer_seconds=round(producer_seconds, 2) if producer_seconds else None,
            producer_posts_per_second=round(n / producer_seconds, 1) if producer_seconds else None,
            producer_summary=summary.decode(errors="replace").strip(),
            mentions_expected=expected_mentions,
            mentions_searchable=curve[-1][1],
            posts_counted=curve[-1][2],
            posts_expected=expected_sum,
            exact=exact_check(es, settings, expected_posts) if complete else None,
            elasticsearch_work=index_work(es, settings),
            worker_metrics=_worker_metrics(pipeline.work_dir / "worker.log"),
            # Workers 2..N (`--workers`): expired reposts show a cross-worker loss.
            other_workers_metrics={
                f"worker-{k}": _worker_metrics(pipeline.work_dir / f"worker-{k}.log")
                for k in range(2, workers + 1)
            },
        )
    finally:
        if producer is not None and producer.poll() is None:
            producer.terminate()
            producer.wait(30)
        result["memory"] = memory.stop()
        if pipeline is not None:
            result["worker_log_tail"] = pipeline.log_tail("worker", 5)
            pipeline.stop()
    try:
        bare = common.bare_consumer_rate(settings.topics.raw_posts, n)
        print(f"  bare kafka-python consumer: {bare['posts_per_second']:.0f}/s")
        if es_alone and result.get("complete"):
            result["stages_alone"] = compare_stages(namespace, n, stage_repeats)
    finally:
        common.delete_namespace(namespace)
        if pipeline is not None:
            common.remove_dir(pipeline.work_dir)
    rate = result.get("posts_per_second") or 0.0
    result.update(
        corpus={"path": str(path), "bytes": path.stat().st_size},
        simulate={
            "seconds": round(simulate_seconds, 2),
            "posts_per_second": round(n / simulate_seconds, 1),
        },
        bare_kafka_python=bare,
        ratio_vs_bare_consumer=round(rate / bare["posts_per_second"], 3),
        env=env,
        goal={"posts_per_second": GOAL_RATE, "ratio": GOAL_RATIO},
        progress_curve=[
            {"t": round(t, 2), "mentions": m, "posts_counted": s}
            for t, m, s in curve[:: max(1, len(curve) // 200)]
        ],
    )
    result["goal_met"] = bool(
        result["matches_reference"]
        and rate >= GOAL_RATE
        and result["ratio_vs_bare_consumer"] >= GOAL_RATIO
    )
    return result


def _completion(result: dict[str, Any]) -> str:
    if not result["complete"]:
        return "NO (timed out)"
    return "yes, = reference" if result["matches_reference"] else "yes, DIFFERS from reference"


def print_result(result: dict[str, Any]) -> None:
    bare = result["bare_kafka_python"]
    rows = [
        (
            "pipeline: producer -> Kafka -> Faust -> sink -> ES",
            result["posts_per_second"],
            f"{result['ratio_vs_bare_consumer']:.2f}x",
            result["seconds"],
            _completion(result),
        ),
        (
            "bare kafka-python consumer of posts.raw",
            bare["posts_per_second"],
            "1.00x",
            bare["seconds"],
            "",
        ),
        (
            "replay producer alone (to Kafka ack)",
            result["producer_posts_per_second"],
            "",
            result["producer_seconds"],
            "",
        ),
        (
            "in-process reference (simulate)",
            result["simulate"]["posts_per_second"],
            "",
            result["simulate"]["seconds"],
            "",
        ),
    ]
    stages = result.get("stages_alone")
    if stages:
        for stage, label in (
            ("elasticsearch_alone", "Elasticsearch alone, the sink's writes again"),
            ("sink_alone", "the sink alone on the run's topics"),
        ):
            rates = stages[f"{stage}_posts_per_second"]
            rows.append(
                (
                    f"{label} (median of {len(stages['repeats'])})",
                    rates["median"],
                    "",
                    statistics.median(run[stage]["seconds"] for run in stages["repeats"]),
                    f"min {rates['min']:.0f}, max {rates['max']:.0f}",
                )
            )
    common.print_table(
        "End-to-end throughput (posts/s; ratio to the bare consumer)",
        rows,
        ("path", "posts/s", "ratio", "seconds", "complete"),
    )
    if stages:
        ratios = stages["ratio_sink_vs_elasticsearch"]
        alone = stages["elasticsearch_alone_posts_per_second"]["median"]
        print(
            f"sink alone / Elasticsearch alone, each pair: {ratios['each']}, median "
            f"{ratios['median']:.2f}x; pipeline / Elasticsearch alone (median): "
            f"{result['posts_per_second'] / alone:.2f}x"
        )
    memory = result.get("memory") or {}
    posts = result["bare_kafka_python"]["posts"]
    if memory:
        # Sampled from each process's first sample (the servers': before the pipeline
        # starts) to the end of the run: where the 2 cores went, per post.
        common.print_table(
            "CPU by process during the run",
            [
                (name, m["cpu_seconds"], round(m["cpu_seconds"] * 1e6 / posts, 1))
                for name, m in memory.items()
            ],
            ("process", "CPU s", "µs a post"),
        )
    work = result.get("elasticsearch_work")
    if work:
        kinds = {"index": "index_ops", "get": "gets", "refresh": "refreshes",
                 "merge": "merges", "query": "queries"}  # fmt: skip
        common.print_table(
            "Elasticsearch's threads by kind of work: ms (operations)",
            [
                (index, *(f"{w[f'{kind}_ms']} ({w[count]})" for kind, count in kinds.items()))
                for index, w in work.items()
            ],
            ("index", *kinds),
        )
    alerts = result.get("alerts")
    if alerts:
        print(
            f"alerts against the reference: {alerts['found']} of {alerts['expected']}, "
            f"missing {alerts['missing']}, unexpected {alerts['unexpected']}, sent twice "
            f"{alerts['sent_twice']}: {'EXACT' if alerts['exact'] else 'MISMATCH'}"
        )
    exact = result.get("exact")
    if exact:
        print(
            f"exact per-paper check: {exact['papers_found']} papers, wrong "
            f"{exact['papers_wrong']}, unexpected {exact['papers_unexpected']}: "
            f"{'EXACT' if exact['exact'] else 'MISMATCH'}"
        )
    else:
        print(
            f"incomplete: {result['mentions_searchable']}/{result['mentions_expected']} "
            f"mentions searchable, {result['posts_counted']}/{result['posts_expected']} "
            "posts counted when the budget ran out"
        )
    memory = result["memory"]
    common.print_table(
        "Memory during the run (VmRSS from /proc)",
        [
            (name, m["peak_rss_mb"], m["mean_rss_mb"], m["samples"])
            for name, m in sorted(memory.items())
        ],
        ("process", "peak MB", "mean MB", "samples"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Worker/sink setting, e.g. TRENDING_SINK_BATCH_SIZE=5000.",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="Budget in seconds from the producer's start."
    )
    parser.add_argument("--name", default="e2e", help="Result file name (bench/results/).")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Worker processes (set TRENDING_TOPIC_PARTITIONS in the environment for more "
        "partitions: the topics are created from it).",
    )
    parser.add_argument(
        "--es-alone",
        action="store_true",
        help="After the run, time Elasticsearch alone and the sink alone on the sink's "
        "records of it, alternating (es_alone.py).",
    )
    parser.add_argument(
        "--stage-repeats",
        type=int,
        default=3,
        help="With --es-alone: how many times each (min and median reported).",
    )
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    if args.posts < 100:
        parser.error("--posts must be at least 100")
    env = parse_env(args.env)
    result = run(
        args.posts, args.seed, env, args.timeout, args.workers, args.es_alone, args.stage_repeats
    )
    print_result(result)
    params = {"posts": args.posts, "seed": args.seed, "env": env, "timeout": args.timeout,
              "workers": args.workers, "stage_repeats": args.stage_repeats,
              "topic_partitions": CommonSettings().topic_partitions}  # fmt: skip
    path = common.save_result(args.name, params, result)
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
