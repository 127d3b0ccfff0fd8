"""Benchmark (issue 15): end to end with the producers writing envelopes vs one post per
record, in one run: `bench_e2e.run` alternating TRENDING_KAFKA_ENVELOPES=true/false,
`--repeats` times each (start-up excluded by bench_e2e), every run checked exactly
against `simulate()`. Prints min/median/max and the ratio of medians (envelopes / single);
writes bench/results/e2e-envelopes.json.

    python -m bench.bench_envelopes [--posts 50000] [--repeats 3] [--env KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from bench import common
from bench.bench_e2e import run
from bench.bench_worker import parse_env

KINDS = {"envelopes": "true", "single": "false"}


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--name", default="e2e-envelopes")
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    env = parse_env(args.env)
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for repeat in range(args.repeats):
        # Alternate which goes first, so a drift in the machine's load hits both.
        order = list(KINDS) if repeat % 2 == 0 else list(reversed(KINDS))
        for kind in order:
            print(f"bench_envelopes: repeat {repeat + 1}, {kind}")
            result = run(
                args.posts,
                args.seed,
                {**env, "TRENDING_KAFKA_ENVELOPES": KINDS[kind]},
                args.timeout,
            )
            result.pop("progress_curve", None)
            result.pop("worker_log_tail", None)
            runs[kind].append(result)
            print(
                f"  {result['posts_per_second']} posts/s, producer "
                f"{result['producer_posts_per_second']} posts/s, "
                f"exact: {bool(result['matches_reference'])}"
            )
    summary: dict[str, Any] = {}
    for kind, results in runs.items():
        summary[kind] = {
            "e2e_posts_per_second": _stats([r["posts_per_second"] or 0.0 for r in results]),
            "producer_posts_per_second": _stats(
                [r["producer_posts_per_second"] or 0.0 for r in results]
            ),
            "all_exact": all(r["matches_reference"] for r in results),
        }
    for measure in ("e2e_posts_per_second", "producer_posts_per_second"):
        single = summary["single"][measure]["median"]
        summary[f"ratio_{measure}"] = (
            round(summary["envelopes"][measure]["median"] / single, 3) if single else None
        )
    common.print_table(
        f"End to end, {args.posts} posts, envelopes vs one post per record "
        f"({args.repeats} repeats; min / median / max)",
        [
            (
                kind,
                *(
                    "{min:.0f} / {median:.0f} / {max:.0f}".format(**summary[kind][m])
                    for m in ("e2e_posts_per_second", "producer_posts_per_second")
                ),
                "yes" if summary[kind]["all_exact"] else "NO",
            )
            for kind in KINDS
        ],
        ("producer writes", "end to end posts/s", "producer posts/s", "exact"),
    )
    print(
        f"ratio envelopes/single (medians): end to end {summary['ratio_e2e_posts_per_second']}, "
        f"producer {summary['ratio_producer_posts_per_second']}"
    )
    params = {"posts": args.posts, "seed": args.seed, "repeats": args.repeats, "env": env}
    path = common.save_result(args.name, params, {"summary": summary, "runs": runs})
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
