"""Benchmark (issue 5): posts/s through the Faust worker against bare consumers of the topic.

In one run, on the real Kafka, in a fresh namespace:
1. pre-load the raw-posts topic with N corpus posts (bench/corpus.py) by the project's
   replay producer;
2. baselines: read the same raw topic from the start with a bare kafka-python consumer
   and with a bare aiokafka consumer (what Faust uses underneath); records/s;
3. start the real worker process (`trending-arxiv worker`: parse -> routed -> ledger ->
   mentions -> counts, changelog-backed tables) and sample its consumer group's committed
   offsets on posts.raw, posts.routed and mentions every 0.25 s. Its rate is measured
   from that lag curve: from the first commit (Faust start-up excluded) until everything
   is committed (lag 0 on all three topics); the steady rate is the slope of the raw
   topic's committed offset between 10% and 90%.

Optionally (`--profile`) py-spy samples the worker during the run and the hottest
functions are reported (with `BENCH_PROFILE_NATIVE=1`, native frames too: the compiled
modules' functions by name, sampled from the stopped worker). Prints a table; writes
bench/results/worker.json.

    python -m bench.bench_worker [--posts N] [--partitions P] [--env KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench import common
from bench.corpus import cached_corpus
from producers.replay import replay
from producers.settings import ProducerSettings
from trending_arxiv.kafka import ensure_topics, partition_of_once
from trending_arxiv.settings import CommonSettings

GOAL_RATE = 10_000.0
GOAL_RATIO = 0.5


def preload(path: pathlib.Path, namespace: str, partitions: int) -> dict[str, Any]:
    """Replay the corpus into the raw topic with the project's producer, one post per
    record (envelopes off: `preload_envelopes` makes those); its own rate."""
    settings = ProducerSettings(
        kafka_bootstrap_servers=common.KAFKA,
        namespace=namespace,
        topic_partitions=partitions,
        kafka_envelopes=False,
    )
    summary = replay([path], settings, progress=False)
    if not summary.complete:
        raise RuntimeError(f"pre-load did not complete: {summary.lines()}")
    return {
        "sent": summary.sent,
        "seconds": round(summary.elapsed_seconds, 3),
        "posts_per_second": round(summary.sent / summary.elapsed_seconds, 1),
    }


def find_py_spy() -> str | None:
    return shutil.which("py-spy") or next(
        (
            str(p)
            for p in (common.ROOT / ".venv/bin/py-spy", pathlib.Path("/tmp/pyspy/bin/py-spy"))
            if p.exists()
        ),
        None,
    )


def start_profiler(pid: int, out: pathlib.Path) -> subprocess.Popen[bytes] | None:
    py_spy = find_py_spy()
    if py_spy is None:
        print("py-spy not found (pip install py-spy); running without a profile")
        return None
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "50",
            "--output",
            str(out),
            # Without it py-spy stops the worker to sample it, and a stop lands at a
            # syscall's return far more often than anywhere else: a loop of getpid() and
            # pure Python (~10% getpid) sampled as 99% getpid; asyncio calls getpid in
            # every get_event_loop(), so the blocking profile blamed aiokafka's per-message
            # futures for ~10% of the worker. Non-blocking: 11.5%, as timed.
            # Compiled frames (the counting core, the ledger) under their own names: py-spy
            # reads native stacks only from a stopped process (so with the skew above).
            "--native" if os.environ.get("BENCH_PROFILE_NATIVE") else "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarise_profile(path: pathlib.Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    if not path.exists():
        return {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        own[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += count
    if not total:
        return {}
    return {
        "samples": total,
        "self": [(name, round(100 * c / total, 1)) for name, c in own.most_common(top)],
        "inclusive": [(name, round(100 * c / total, 1)) for name, c in inclusive.most_common(top)],
    }


def _short(frame: str) -> str:
    """`func (path/to/module.py:123)` -> `func (module.py)`: group a function's lines."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    parts = where.split("/")
    short = "/".join(parts[-2:]) if "site-packages" in where or len(parts) > 1 else where
    return f"{name} ({short})"


def measure_worker(
    namespace: str,
    n: int,
    env: dict[str, str],
    timeout: float,
    profile: pathlib.Path | None,
    workers: int = 1,
    raw_records: int | None = None,
) -> dict[str, Any]:
    """The worker's posts/s on `n` pre-filled posts in `raw_records` raw records (fewer
    than `n` when they are envelopes)."""
    raw_records = raw_records or n
    per_record = n / raw_records  # posts per raw record
    settings = CommonSettings(namespace=namespace)
    topics = settings.topics
    watched = [topics.raw_posts, topics.routed_posts, topics.mentions]
    pipeline = common.start_pipeline(namespace, ["worker"], env)
    names = ["worker"] + [f"worker-{k}" for k in range(2, workers + 1)]
    for name in names[1:]:  # scale-out: same app id, the partitions are split
        pipeline.processes.start(name, "worker")
    memory = common.MemorySampler().start()
    for name in names:
        memory.watch(name, pipeline.pid(name))
    probe = common.LagProbe(common.worker_group(namespace), watched)
    profiler = start_profiler(pipeline.pid("worker"), profile) if profile else None
    curve: list[tuple[float, dict[str, tuple[int, int]]]] = []
    cpu: list[float | None] = []  # the worker's CPU seconds at each sample
    worker_pids = [pipeline.pid(name) for name in names]
    started = time.monotonic()
    try:
        stable = 0
        while True:
            pipeline.processes.check_alive()
            now = time.monotonic() - started
            sample = probe.sample()
            curve.append((now, sample))
            cpu.append(total_cpu_seconds(worker_pids))
            raw_done = sample[topics.raw_posts][0] >= raw_records
            quiet = all(c == e for c, e in sample.values())
            previous = curve[-2][1] if len(curve) > 1 else None
            stable = stable + 1 if raw_done and quiet and sample == previous else 0
            if stable >= 2:
                break
            if now > timeout:
                break  # over budget: report the rate so far, marked incomplete
            time.sleep(0.25)
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            try:
                profiler.wait(20)
            except subprocess.TimeoutExpired:
                profiler.kill()
        memory_stats = memory.stop()
        probe.close()
        worker_log = pipeline.log_tail("worker", 5)
        pipeline.stop()
        common.remove_dir(pipeline.work_dir)
    raw = topics.raw_posts
    first = next((i for i, (_, s) in enumerate(curve) if s[raw][0] > 0), len(curve) - 1)
    done = next(
        (
            i
            for i, (_, s) in enumerate(curve)
            if all(c == e for c, e in s.values()) and s[raw][0] >= raw_records
        ),
        None,
    )
    complete = done is not None
    if done is None:
        done = len(curve) - 1
    t0, c0 = curve[first][0], curve[first][1][raw][0] * per_record
    t_end = curve[done][0]
    # Incomplete: posts whose whole chain is committed are at most the slowest stage's share.
    finished = (
        n
        if complete
        else min(
            curve[done][1][raw][0] * per_record,
            *(int(n * c / e) for t, (c, e) in curve[done][1].items() if t != raw and e),
        )
    )
    rate = (finished - c0) / (t_end - t0) if t_end > t0 else None
    cpu_start, cpu_end = cpu[first], cpu[done]
    busy = (
        (cpu_end - cpu_start) / (t_end - t0)
        if cpu_start is not None and cpu_end is not None and t_end > t0
        else None
    )
    steady_records = _slope(curve, raw, 0.1 * raw_records, 0.9 * raw_records)
    steady = steady_records * per_record if steady_records else None
    return {
        "complete": complete,
        "startup_seconds": round(t0, 2),
        "committed_at_first_sample": c0,
        "measured_seconds": round(t_end - t0, 2),
        "posts_per_second": round(rate, 1) if rate else None,
        "steady_posts_per_second": round(steady, 1) if steady else None,
        # CPU seconds the worker used per wall second while measured (1.0 = one core busy).
        "worker_cpu_share": round(busy, 3) if busy is not None else None,
        "routed_records": curve[done][1][topics.routed_posts][1],
        "mention_records": curve[done][1][topics.mentions][1],
        "memory": memory_stats,
        "env": env,
        "lag_curve": [
            {
                "t": round(t, 2),
                **{k.rsplit(".", 1)[-1] if "." in k else k: list(v) for k, v in s.items()},
            }
            for t, s in curve[:: max(1, len(curve) // 200)]
        ],
        "worker_log_tail": worker_log,
    }


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), None once it is gone."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def total_cpu_seconds(pids: list[int]) -> float | None:
    """CPU seconds of all `pids`, None once one is gone."""
    seconds = [cpu_seconds(pid) for pid in pids]
    return None if None in seconds else sum(s for s in seconds if s is not None)


def _slope(
    curve: list[tuple[float, dict[str, tuple[int, int]]]], topic: str, lo: float, hi: float
) -> float | None:
    points = [(t, s[topic][0]) for t, s in curve if lo <= s[topic][0] <= hi]
    if len(points) < 2 or points[-1][0] == points[0][0]:
        return None
    return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])


def faust_baseline_rate(
    topic: str, n: int, env: dict[str, str], timeout: float, loglevel: str = "info"
) -> dict[str, Any]:
    """Records/s of a Faust agent that only reads the topic (bench/faust_baseline.py)."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.faust_baseline", topic, str(n), loglevel],
        cwd=common.ROOT,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": common.KAFKA, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    # Faust's worker routes stdout through its logging (to stderr): find the JSON line.
    output = completed.stdout + "\n" + completed.stderr
    found = [
        line[line.index('{"records"') :] for line in output.splitlines() if '{"records"' in line
    ]
    if not found:
        raise RuntimeError(f"Faust baseline gave no result: {completed.stderr[-2000:]}")
    return dict(json.loads(found[-1].strip()))


def run_envelopes(
    n: int,
    seed: int,
    partitions: int,
    env: dict[str, str],
    timeout: float,
    workers: int = 1,
    profile: bool = False,
) -> dict[str, Any]:
    """The worker alone on `n` posts pre-filled as envelopes, with its own batch sizes
    (the baselines, one post per record, are `--compare`'s)."""
    namespace = common.fresh_namespace("worker-envelopes")
    profile_path = _profile_path(namespace) if profile else None
    print(f"bench_worker: namespace {namespace}, {n} posts in envelopes, {partitions} partitions")
    path = cached_corpus(n, seed)
    env = {"TRENDING_TOPIC_PARTITIONS": str(partitions), **env}
    ensure_topics(
        CommonSettings(
            kafka_bootstrap_servers=common.KAFKA, namespace=namespace, topic_partitions=partitions
        )
    )
    try:
        packed = preload_envelopes(path, namespace, partitions)
        print(f"  pre-loaded {packed['posts']} posts in {packed['records']} envelopes")
        worker = measure_worker(
            namespace, n, env, timeout, profile_path, workers, raw_records=packed["records"]
        )
        worker.pop("lag_curve", None)
        cpu = _cpu_us_per_post(worker)
        rate = worker["posts_per_second"]
        shown = "too short to measure (use more --posts)" if rate is None else f"{rate:.0f}/s"
        print(f"  worker: {shown}, {cpu} µs CPU a post")
    finally:
        common.delete_namespace(namespace, es=False)
    result = {"namespace": namespace, "corpus": str(path), "envelopes": packed["records"],
              "worker": worker, "cpu_us_per_post": _cpu_us_per_post(worker)}  # fmt: skip
    if profile_path is not None:
        result["profile"] = summarise_profile(profile_path)
        result["profile_raw"] = str(profile_path)
    return result


def _profile_path(namespace: str) -> pathlib.Path:
    """Where py-spy's raw collapsed stacks go: out of the repository (the JSON keeps
    their summary)."""
    return pathlib.Path(tempfile.gettempdir()) / f"{namespace}-profile.txt"


def run(
    n: int,
    seed: int,
    partitions: int,
    env: dict[str, str],
    profile: bool,
    timeout: float,
    workers: int = 1,
) -> dict[str, Any]:
    namespace = common.fresh_namespace("worker")
    print(f"bench_worker: namespace {namespace}, {n} posts, {partitions} partitions")
    path = cached_corpus(n, seed)
    settings = CommonSettings(
        kafka_bootstrap_servers=common.KAFKA, namespace=namespace, topic_partitions=partitions
    )
    env = {"TRENDING_TOPIC_PARTITIONS": str(partitions), **env}
    profile_path = _profile_path(namespace) if profile else None
    try:
        ensure_topics(settings)
        loaded = preload(path, namespace, partitions)
        print(f"  pre-loaded {loaded['sent']} posts ({loaded['posts_per_second']:.0f}/s)")
        bare = common.bare_consumer_rate(settings.topics.raw_posts, n)
        print(f"  bare kafka-python consumer: {bare['posts_per_second']:.0f}/s")
        aio = common.aiokafka_consumer_rate(settings.topics.raw_posts, n)
        print(f"  bare aiokafka consumer: {aio['posts_per_second']:.0f}/s")
        faust_only = faust_baseline_rate(settings.topics.raw_posts, n, env, timeout)
        print(f"  bare Faust agent: {faust_only['posts_per_second']:.0f}/s")
        worker = measure_worker(namespace, n, env, timeout, profile_path, workers)
        print(f"  worker: {worker['posts_per_second']:.0f}/s")
    finally:
        common.delete_namespace(namespace, es=False)
    rate = worker["posts_per_second"] or 0.0
    result: dict[str, Any] = {
        "namespace": namespace,
        "corpus": {"path": str(path), "bytes": path.stat().st_size},
        "preload_producer": loaded,
        "bare_kafka_python": bare,
        "bare_aiokafka": aio,
        "bare_faust_agent": faust_only,
        "worker": worker,
        "ratio_vs_kafka_python": round(rate / bare["posts_per_second"], 3),
        "ratio_vs_aiokafka": round(rate / aio["posts_per_second"], 3),
        "ratio_vs_bare_faust_agent": round(rate / faust_only["posts_per_second"], 3),
        "goal": {"posts_per_second": GOAL_RATE, "ratio": GOAL_RATIO},
    }
    result["goal_met"] = (
        worker["complete"] and rate >= GOAL_RATE and result["ratio_vs_kafka_python"] >= GOAL_RATIO
    )
    if profile_path is not None:
        result["profile"] = summarise_profile(profile_path)
        result["profile_raw"] = str(profile_path)
    return result


def print_result(result: dict[str, Any]) -> None:
    worker = result["worker"]
    aio_ratio = (
        result["bare_aiokafka"]["posts_per_second"]
        / result["bare_kafka_python"]["posts_per_second"]
    )
    faust_ratio = (
        result["bare_faust_agent"]["posts_per_second"]
        / result["bare_kafka_python"]["posts_per_second"]
    )
    rows = [
        (
            "bare kafka-python consumer",
            result["bare_kafka_python"]["posts_per_second"],
            "1.00x",
            result["bare_kafka_python"]["seconds"],
        ),
        (
            "bare aiokafka consumer",
            result["bare_aiokafka"]["posts_per_second"],
            f"{aio_ratio:.2f}x",
            result["bare_aiokafka"]["seconds"],
        ),
        (
            "bare Faust agent (reads, no work)",
            result["bare_faust_agent"]["posts_per_second"],
            f"{faust_ratio:.2f}x",
            result["bare_faust_agent"]["seconds"],
        ),
        (
            "Faust worker (lag curve)" + ("" if worker["complete"] else ", INCOMPLETE"),
            worker["posts_per_second"],
            f"{result['ratio_vs_kafka_python']:.2f}x",
            worker["measured_seconds"],
        ),
        ("Faust worker (steady 10-90%)", worker["steady_posts_per_second"], "", ""),
        (
            "replay producer (pre-load)",
            result["preload_producer"]["posts_per_second"],
            "",
            result["preload_producer"]["seconds"],
        ),
    ]
    common.print_table(
        "Worker throughput (posts/s; ratio to the bare kafka-python consumer)",
        rows,
        ("reader", "posts/s", "ratio", "seconds"),
    )
    memory = worker["memory"].get("worker", {})
    print(
        f"worker start-up (excluded) {worker['startup_seconds']} s; CPU share "
        f"{worker.get('worker_cpu_share')}; peak RSS "
        f"{memory.get('peak_rss_mb')} MB; goal >= {GOAL_RATE:.0f}/s and >= {GOAL_RATIO}x: "
        f"{'met' if result['goal_met'] else 'NOT met'}"
    )
    print_profile(result)


def print_profile(result: dict[str, Any]) -> None:
    profile = result.get("profile")
    if profile:
        common.print_table(
            f"Worker profile (py-spy, {profile['samples']} samples): inclusive share",
            profile["inclusive"][:20],
            ("function", "% of samples"),
        )
        common.print_table(
            "Worker profile: self share", profile["self"][:15], ("function", "% of samples")
        )


def preload_envelopes(path: pathlib.Path, namespace: str, partitions: int) -> dict[str, Any]:
    """The corpus as envelopes (core/envelope.py): each on its posts' murmur2 partition."""
    from kafka import KafkaProducer

    from producers.keys import key_of
    from trending_arxiv.core.envelope import ENVELOPE_HEADER, ENVELOPE_NDJSON, envelopes

    def partition_of(line: bytes) -> int:
        key = key_of(line).key
        if key is None:
            return 0
        return partition_of_once(key.encode("utf-8", "surrogatepass"), partitions)

    topic = CommonSettings(namespace=namespace).topics.raw_posts
    producer = KafkaProducer(
        bootstrap_servers=common.KAFKA,
        acks="all",
        compression_type="zstd",
        linger_ms=20,
        batch_size=512 * 1024,
        max_request_size=1_048_576,
    )
    started = time.perf_counter()
    records = posts = 0
    with path.open("rb") as handle:
        lines = (line.rstrip(b"\r\n") for line in handle if line.strip())
        for partition, value in envelopes(lines, partition_of):
            producer.send(
                topic,
                value=value,
                partition=partition,
                headers=[(ENVELOPE_HEADER, ENVELOPE_NDJSON)],
            )
            records += 1
            posts += value.count(b"\n") + 1
    producer.flush()
    producer.close()
    seconds = time.perf_counter() - started
    return {"records": records, "posts": posts, "seconds": round(seconds, 3)}


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}


def compare(
    path: pathlib.Path, n: int, partitions: int, repeats: int, env: dict[str, str], timeout: float
) -> dict[str, Any]:
    """Same run, `repeats` times each, on pre-filled topics, start-up excluded:
    bare consumers and a bare Faust agent (log level info, and warning as the old bench
    ran it) reading one post per record; the worker on one post per record; the worker
    on envelopes (raw batches of ~as many posts as one post per record gives; the
    worker's default batches hold the whole of a small corpus, so they are measured on
    1M posts by `--envelopes`). Ratios are taken between medians of this run."""
    env = {"TRENDING_TOPIC_PARTITIONS": str(partitions), **env}
    runs: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    namespaces: list[str] = []

    def fresh(kind: str) -> str:
        namespace = common.fresh_namespace(f"worker-{kind}")
        namespaces.append(namespace)
        ensure_topics(
            CommonSettings(
                kafka_bootstrap_servers=common.KAFKA,
                namespace=namespace,
                topic_partitions=partitions,
            )
        )
        return namespace

    try:
        single = fresh("single")
        loaded = preload(path, single, partitions)
        print(f"  pre-loaded {loaded['sent']} posts one per record")
        raw = CommonSettings(namespace=single).topics.raw_posts
        for repeat in range(repeats):
            runs["bare_kafka_python"].append(common.bare_consumer_rate(raw, n))
            runs["bare_aiokafka"].append(common.aiokafka_consumer_rate(raw, n))
            runs["bare_faust_agent"].append(faust_baseline_rate(raw, n, env, timeout))
            runs["bare_faust_agent_loglevel_warning"].append(
                faust_baseline_rate(raw, n, env, timeout, loglevel="warning")
            )
            print(f"  repeat {repeat + 1}: baselines " + ", ".join(
                f"{k} {v[-1]['posts_per_second']:.0f}/s" for k, v in runs.items()
            ))  # fmt: skip
        for repeat in range(repeats):
            for kind in ("single", "envelopes"):
                enveloped = kind.startswith("envelopes")
                namespace = single if (kind == "single" and repeat == 0) else fresh(kind)
                if kind == "single" and repeat > 0:
                    preload(path, namespace, partitions)
                elif enveloped:
                    packed = preload_envelopes(path, namespace, partitions)
                    print(f"  pre-loaded {packed['posts']} posts in {packed['records']} envelopes")
                records = packed["records"] if enveloped else n
                kind_env = env
                if kind == "envelopes":
                    # Batches are counted in records: keep ~as many posts per batch.
                    posts_per_batch = int(env.get("TRENDING_BATCH_SIZE", "500"))
                    per_envelope = max(1, n // records)
                    kind_env = {
                        **env,
                        "TRENDING_RAW_BATCH_SIZE": str(max(1, posts_per_batch // per_envelope)),
                    }
                worker = measure_worker(namespace, n, kind_env, timeout, None, raw_records=records)
                worker["env"] = kind_env
                worker.pop("lag_curve", None)
                runs[f"worker_{kind}"].append(worker)
                print(f"  repeat {repeat + 1}: worker ({kind}) {worker['posts_per_second']}/s")
    finally:
        for namespace in namespaces:
            common.delete_namespace(namespace, es=False)
    summary = {
        name: _stats([r["posts_per_second"] or 0.0 for r in results])
        for name, results in runs.items()
    }
    # CPU per post does not depend on how much of the shared machine the process got.
    cpu_us = {
        name: _stats([c for r in results if (c := _cpu_us_per_post(r)) is not None])
        for name, results in runs.items()
        if any(_cpu_us_per_post(r) is not None for r in results)
    }
    faust = summary["bare_faust_agent"]["median"]
    ratios = {
        f"{name}_vs_bare_faust_agent": round(stats["median"] / faust, 3)
        for name, stats in summary.items()
    }
    single_median = summary["worker_single"]["median"]
    for name in ("worker_envelopes",):
        if single_median:
            ratios[f"{name}_vs_worker_single"] = round(summary[name]["median"] / single_median, 3)
    return {"posts": n, "partitions": partitions, "repeats": repeats, "summary": summary,
            "cpu_us_per_post": cpu_us, "ratios": ratios, "runs": runs}  # fmt: skip


def _cpu_us_per_post(run: dict[str, Any]) -> float | None:
    """CPU µs per post of one measurement (the worker's CPU share over its rate)."""
    if "cpu_us_per_record" in run:
        return float(run["cpu_us_per_record"])
    share, rate = run.get("worker_cpu_share"), run.get("posts_per_second")
    return round(share / rate * 1e6, 1) if share and rate else None


def print_compare(result: dict[str, Any]) -> None:
    rows = [
        (name, stats["min"], stats["median"], stats["max"],
         f"{result['ratios'][f'{name}_vs_bare_faust_agent']:.2f}x",
         result["cpu_us_per_post"].get(name, {}).get("median"))
        for name, stats in result["summary"].items()
    ]  # fmt: skip
    common.print_table(
        f"Same run, {result['repeats']} repeats, {result['posts']} posts "
        "(posts/s; ratio of medians to the bare Faust agent at log level info)",
        rows,
        ("reader", "min", "median", "max", "ratio", "CPU µs/post (median)"),
    )


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env expects KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Worker setting, e.g. TRENDING_BATCH_SIZE=2000 (repeatable).",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="Worker processes (scale-out, same app)."
    )
    parser.add_argument("--profile", action="store_true", help="Sample the worker with py-spy.")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--name", default="worker", help="Result file name (bench/results/).")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="Same-run comparison: baselines and the worker on single posts and on envelopes.",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--envelopes",
        action="store_true",
        help="The worker alone on the corpus pre-filled as envelopes, default batch sizes.",
    )
    parser.add_argument("--corpus", type=pathlib.Path, help="Use this JSON-lines file.")
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    if args.posts < 100:
        parser.error("--posts must be at least 100")
    env = parse_env(args.env)
    os.environ.setdefault("KAFKA_BOOTSTRAP_SERVERS", common.KAFKA)
    if args.compare:
        path = args.corpus or cached_corpus(args.posts, args.seed)
        posts = sum(1 for line in path.open("rb") if line.strip())
        compared = compare(path, posts, args.partitions, args.repeats, env, args.timeout)
        print_compare(compared)
        saved = common.save_result(
            args.name,
            {"posts": posts, "corpus": str(path), "partitions": args.partitions,
             "repeats": args.repeats, "env": env},
            compared,
        )  # fmt: skip
        print(f"saved {saved}")
        return 0
    if args.envelopes:
        result = run_envelopes(
            args.posts, args.seed, args.partitions, env, args.timeout, args.workers, args.profile
        )
        print_profile(result)
        params = {"posts": args.posts, "seed": args.seed, "partitions": args.partitions,
                  "workers": args.workers, "env": env, "envelopes": True,
                  "profile": args.profile}  # fmt: skip
        print(f"saved {common.save_result(args.name, params, result)}")
        return 0
    result = run(
        args.posts, args.seed, args.partitions, env, args.profile, args.timeout, args.workers
    )
    print_result(result)
    params = {
        "posts": args.posts,
        "seed": args.seed,
        "partitions": args.partitions,
        "workers": args.workers,
        "env": env,
        "profile": args.profile,
    }
    path = common.save_result(args.name, params, result)
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
