"""Run every benchmark, each in its own process, and summarise them in one table.

    python -m bench.run_all --quick   # bounded: about 10 minutes on a 2-core machine
    python -m bench.run_all           # full: N = 1M posts (takes long; see bench/README.md)

Each bench prints its own tables and writes bench/results/<name>.json (machine,
versions, git commit, parameters, results); this script adds bench/results/run_all.json
with the summary. Time budgets bound the pipeline benches: a pipeline that has not
finished in its budget is reported with the rate it reached, marked incomplete.
Benchmarks are measurements, not tests: the exit status is non-zero only when a bench
crashed, never because a goal was missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench import common


@dataclass(frozen=True)
class Bench:
    name: str  # also its result file: bench/results/<name>.json
    module: str  # run as `python -m bench.<module>` from the repository root
    quick: tuple[str, ...]
    full: tuple[str, ...]


BENCHES = (
    Bench("extract", "bench_extract", ("--posts", "20000", "--repeat", "2"), ()),
    Bench("search", "bench_search", ("--quick",), ()),
    Bench(
        "worker",
        "bench_worker",
        ("--posts", "10000", "--timeout", "120"),
        ("--posts", "1000000", "--timeout", "3600"),
    ),
    Bench(
        "e2e",
        "bench_e2e",
        ("--posts", "10000", "--timeout", "150"),
        ("--posts", "1000000", "--timeout", "3600"),
    ),
    Bench(
        "latency",
        "bench_latency",
        ("--rate", "500", "--seconds", "15", "--drain", "30"),
        ("--rate", "500", "--seconds", "60"),
    ),
    Bench(
        "refresh",
        "bench_refresh",
        ("--posts", "20000", "--hours", "3", "--sample-every", "30"),
        ("--posts", "1000000", "--hours", "24"),
    ),
)


def summary_rows(name: str, doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One or more (bench, what, value, goal) rows from a result file."""
    r = doc.get("results", {})
    if name == "worker":
        w = r.get("worker", {})
        return [
            (
                name,
                "Faust worker posts/s" + ("" if w.get("complete") else " (incomplete)"),
                w.get("posts_per_second"),
                ">= 10000",
            ),
            (name, "ratio to bare kafka-python consumer", r.get("ratio_vs_kafka_python"), ">= 0.5"),
            (
                name,
                "bare kafka-python consumer posts/s",
                r.get("bare_kafka_python", {}).get("posts_per_second"),
                "",
            ),
            (
                name,
                "worker peak RSS MB",
                w.get("memory", {}).get("worker", {}).get("peak_rss_mb"),
                "",
            ),
        ]
    if name == "e2e":
        rows: list[tuple[Any, ...]] = [
            (
                name,
                "pipeline posts/s" + ("" if r.get("complete") else " (incomplete)"),
                r.get("posts_per_second"),
                ">= 10000",
            ),
            (name, "ratio to bare consumer", r.get("ratio_vs_bare_consumer"), ">= 0.5"),
            (name, "counts equal the reference", r.get("matches_reference"), "True"),
        ]
        for process, m in sorted(r.get("memory", {}).items()):
            rows.append((name, f"peak RSS MB: {process}", m.get("peak_rss_mb"), ""))
        return rows
    if name == "latency":
        rows = []
        for config, c in r.items():
            seen = f"{c.get('probes_seen')}/{c.get('probes')}"
            rows.append((name, f"{config}: probes seen", seen, "all"))
            rows.append((name, f"{config}: p50 s", c.get("p50"), "<= 1.2"))
            rows.append((name, f"{config}: p99 s", c.get("p99"), "<= 2.0"))
        return rows
    if name == "extract":
        return [
            (name, f"{row.get('pipeline')} posts/s", row.get("posts_per_s"), "")
            for row in doc.get("rows", [])
        ]
    if name == "search":
        return [(name, key, value, "") for key, value in doc.get("summary", {}).items()]
    if name == "refresh":
        before, now = r.get("every_recent_paper", {}), r.get("next_count_change", {})
        return [
            (name, "updates/tick, every recent paper", before.get("updates_per_tick"), ""),
            (name, "updates/tick, next count change", now.get("updates_per_tick"), ""),
            (name, "mismatches", r.get("mismatches"), "0"),
        ]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Small N, bounded time.")
    parser.add_argument("--only", default="", help="Comma-separated bench names to run.")
    parser.add_argument("--skip", default="", help="Comma-separated bench names to skip.")
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    known = {b.name for b in BENCHES}
    if (only | skip) - known:
        parser.error(f"unknown bench(es) {sorted((only | skip) - known)}; known: {sorted(known)}")
    selected = [b for b in BENCHES if (not only or b.name in only) and b.name not in skip]
    started = time.monotonic()
    runs: dict[str, dict[str, Any]] = {}
    for bench in selected:
        extra = bench.quick if args.quick else bench.full
        command = [sys.executable, "-m", f"bench.{bench.module}", *extra]
        print(f"\n=== {bench.name}: {' '.join(command[1:])}", flush=True)
        t0 = time.monotonic()
        child = subprocess.Popen(command, cwd=common.ROOT)
        try:
            status = child.wait()
        finally:
            if child.poll() is None:  # interrupted: let the bench stop its processes
                child.terminate()
                child.wait(60)
        runs[bench.name] = {"status": status, "seconds": round(time.monotonic() - t0, 1)}
    rows: list[tuple[Any, ...]] = []
    for name, run in runs.items():
        path = common.RESULTS_DIR / f"{name}.json"
        if run["status"] != 0 or not path.exists():
            rows.append((name, f"FAILED (exit {run['status']})", None, ""))
            continue
        rows.extend(summary_rows(name, json.loads(path.read_text())))
    common.print_table(
        f"Summary ({'quick' if args.quick else 'full'}; {time.monotonic() - started:.0f} s)",
        rows,
        ("bench", "measure", "value", "goal"),
    )
    common.save_result(
        "run_all",
        {"quick": args.quick, "selected": [b.name for b in selected]},
        {"runs": runs, "summary": [list(r) for r in rows]},
    )
    return 0 if all(r["status"] == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
