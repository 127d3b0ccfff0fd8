"""Benchmark: the worker's count refresh when no post comes — what it sends and costs.

Windows decay without new posts, so the worker's `refresh-counts` timer republishes
papers every minute. Two policies on the same paper states:

* **every recent paper** (the policy before): each tick, a count update for every paper
  with a post in the last 30 days;
* **next count change** (now, `trending_arxiv.core.refresh.RefreshSchedule`): each tick, an
  update only for papers whose window counts changed since their last update
  (`counting.next_count_change`, kept in a priority queue); ranking by trend score needs
  none (`counting.trend_rank` is time-invariant).

The states are the reference pipeline's (`trending_arxiv.core.simulate`) after N generated
posts (`bench/corpus.py`, event times over 7 days); then the stream goes quiet and the
timer ticks every 60 s for H hours. Pure Python, no Kafka or Elasticsearch: this is the
worker's CPU time per tick (thread CPU, median over ticks) and the updates it would send.
Correctness: at sampled ticks, every paper's last sent counts under the new policy equal
its counts computed afresh at that tick (reported as `mismatches`, must be 0).

    python -m bench.bench_refresh [--posts N] [--hours H] [--sample-every K]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import print_table, save_result
from bench.corpus import cached_corpus
from trending_arxiv.core import counting
from trending_arxiv.core.counting import PaperState
from trending_arxiv.core.refresh import RefreshSchedule
from trending_arxiv.core.simulate import read_lines, simulate

ROOT = pathlib.Path(__file__).resolve().parents[1]

TICK_SECONDS = 60.0


def every_recent_paper(states: dict[str, PaperState], as_of: datetime) -> int:
    """The previous policy: one update per paper with a post in the last 30 days."""
    horizon = as_of.timestamp() - counting.RETENTION_SECONDS
    sent = 0
    for arxiv_id, state in states.items():
        if state["last"] is not None and state["last"] >= horizon:
            counting.count_update(arxiv_id, state, as_of)
            sent += 1
    return sent


class NextChangePolicy:
    """The worker's policy (`streams.agents.refresh_counts` with `RefreshSchedule`),
    remembering what it last sent."""

    def __init__(self) -> None:
        self.schedule = RefreshSchedule()
        self.sent: dict[str, tuple[dict[str, int], dict[str, int]]] = {}

    def tick(self, states: dict[str, PaperState], as_of: datetime) -> int:
        due = self.schedule.due(states, as_of, lambda _: True)
        for arxiv_id in due:
            update = counting.count_update(arxiv_id, states[arxiv_id], as_of)
            self.sent[arxiv_id] = (update.posts, update.accounts)
            self.schedule.schedule(arxiv_id, states[arxiv_id], as_of)
        return len(due)

    def mismatches(self, states: dict[str, PaperState], as_of: datetime) -> int:
        """Papers whose last sent counts differ from their counts at `as_of`."""
        wrong = 0
        for arxiv_id, state in states.items():
            if arxiv_id in self.sent and self.sent[arxiv_id] != counting.window_counts(
                state, as_of
            ):
                wrong += 1
        return wrong


def cpu_timed(function: Any, *args: Any) -> tuple[Any, float]:
    started = time.thread_time()
    value = function(*args)
    return value, time.thread_time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hours", type=float, default=24.0, help="quiet time after the posts")
    parser.add_argument(
        "--sample-every", type=int, default=240,
        help="time the previous policy and check correctness every K ticks",
    )  # fmt: skip
    args = parser.parse_args(argv)

    corpus = cached_corpus(args.posts, args.seed)
    started = time.perf_counter()
    reference = simulate(read_lines([corpus]))
    states = reference.states
    took = time.perf_counter() - started
    print(f"{len(states):,} papers from {args.posts:,} posts (simulated in {took:.0f} s)")
    end = max(state["last"] for state in states.values() if state["last"] is not None)
    start = datetime.fromtimestamp(end, UTC)
    for state in states.values():  # as the worker leaves them (it prunes at every update)
        counting.prune(state, start)

    policy = NextChangePolicy()
    ticks = int(args.hours * 3600 / TICK_SECONDS)
    new_sent: list[int] = []
    new_cpu: list[float] = []
    old_sent: list[int] = []
    old_cpu: list[float] = []
    mismatches = 0
    for tick in range(ticks + 1):
        as_of = start + timedelta(seconds=tick * TICK_SECONDS)
        sent, cpu = cpu_timed(policy.tick, states, as_of)
        new_sent.append(sent)
        new_cpu.append(cpu)
        if tick % args.sample_every == 0 or tick == 1:
            sent, cpu = cpu_timed(every_recent_paper, states, as_of)
            old_sent.append(sent)
            old_cpu.append(cpu)
            mismatches += policy.mismatches(states, as_of)
        if tick % 120 == 0:
            print(f"  tick {tick}/{ticks}: sent {new_sent[-1]:,} (every recent: {old_sent[-1]:,})")

    # Tick 0 is the first refresh after a start: both send (about) every recent paper.
    steady_new = new_sent[1:]
    results: dict[str, Any] = {
        "papers": len(states),
        "ticks": ticks,
        "first_tick_updates": new_sent[0],
        "every_recent_paper": {
            "updates_per_tick": statistics.mean(old_sent),
            "cpu_ms_per_tick_median": statistics.median(old_cpu) * 1000,
            "ticks_timed": len(old_cpu),
        },
        "next_count_change": {
            "updates_per_tick": statistics.mean(steady_new),
            "updates_per_tick_max": max(steady_new),
            "updates_first_hour_per_tick": statistics.mean(steady_new[:60]),
            "updates_after_first_hour_per_tick": statistics.mean(steady_new[60:] or [0]),
            "cpu_ms_per_tick_median": statistics.median(new_cpu[1:]) * 1000,
        },
        "mismatches": mismatches,
    }
    old, new = results["every_recent_paper"], results["next_count_change"]
    rows = [
        ("every recent paper (before)", old["updates_per_tick"], "-",
         old["cpu_ms_per_tick_median"]),
        ("next count change (now)", new["updates_per_tick"], new["updates_per_tick_max"],
         new["cpu_ms_per_tick_median"]),
        ("  first hour after the posts", new["updates_first_hour_per_tick"], "-", "-"),
        ("  after the first hour", new["updates_after_first_hour_per_tick"], "-", "-"),
    ]  # fmt: skip
    print_table(
        f"Count refresh, {len(states):,} papers, {args.hours:g} h quiet, a tick a minute "
        f"(mismatches: {mismatches})",
        rows,
        ("policy", "updates/tick", "max", "CPU ms/tick (median)"),
    )
    ratio = new["updates_per_tick"] / old["updates_per_tick"] if old["updates_per_tick"] else 0
    print(f"updates: {ratio:.4f}x of the previous policy")
    path = save_result("refresh", vars(args), results)
    print(f"saved {path}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
