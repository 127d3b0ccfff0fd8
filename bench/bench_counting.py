"""The counting agent's work alone, in process: CPU a mention and a digest of its answers.

The bench corpus's mentions (`simulate()`'s: parsed and stepped through the ledger, as
the worker does) are put on their paper's partition and counted the way the counting
agent counts them (`pipeline.count_paper_at` a paper and batch, summaries stored packed,
account entries staged and saved after them), in batches of `--batch` mentions a
partition, the partitions taking turns, each batch at its stream time (the newest
mention so far). No Kafka: the clock covers only the counting steps.

The digest hashes every count update and the moment each paper's counts next change:
two versions of the counting core that give the same digest at the same batch size give
the same answers. The alerts are decided as the counting agent decides them (each
batch's mentions noted in their papers' alert logs, `core.alert_log`, then every moment
before the watermark decided; here the watermark is the least moment still to come) and
get a digest of their own (id, moment, numbers), which must not depend on the batch
size nor on the order: it must be `simulate()`'s (`alerts_in_event_time`).

`--raw-partitions N` also counts the mentions in the order a worker reading N raw
partitions can see them: each paper partition's mentions taken from the N raw
partitions (by post id, as the producers key posts) in turns, `--raw-chunk` at a time.
The table says how many alert facts differ from the in-order run's (none, if exact).

    python -m bench.bench_counting [--posts 1000000] [--batch 300 --batch 3000]
    python -m bench.bench_counting --batch 3000 --raw-partitions 4
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from bench import common
from bench.corpus import generate
from trending_arxiv.core import counting, stored
from trending_arxiv.core.alert_book import AlertBook
from trending_arxiv.core.alert_log import micros
from trending_arxiv.core.alerting import AlertRules
from trending_arxiv.core.compiled import native_state
from trending_arxiv.core.models import Mention
from trending_arxiv.core.pipeline import StagedAccounts, UnpackedSummaries, count_paper_at
from trending_arxiv.core.simulate import simulate
from trending_arxiv.kafka import partition_of


def count_in_batches(
    by_partition: dict[int, list[Mention]], batch: int, rules: AlertRules
) -> dict[str, Any]:
    """Count every partition's mentions in batches of `batch`; time and digests."""
    papers: dict[str, bytes] = {}
    accounts_saved: dict[str, Any] = {}
    summaries = UnpackedSummaries(papers)
    answers, alert_keys = hashlib.sha256(), []
    batches = sorted(
        (start, partition, offset, mentions[start : start + batch])
        for partition, mentions in by_partition.items()
        for offset, start in enumerate(range(0, len(mentions), batch))
    )
    # The least moment still to come after each batch: the watermark it decides up to.
    still_to_come: list[int] = []
    least = 2**62
    for _, _, _, mentions in reversed(batches):
        still_to_come.append(least)
        least = min(least, *(micros(m.moment) for m in mentions))
    still_to_come.reverse()
    logs: dict[int, dict[str, bytes]] = {partition: {} for partition in by_partition}
    books = {partition: AlertBook(logs[partition]) for partition in by_partition}
    logs_peak = 0
    newest, seconds, alert_seconds, updates = 0.0, 0.0, 0.0, 0
    for (_, partition, offset, mentions), watermark in zip(batches, still_to_come, strict=True):
        by_paper: dict[str, list[tuple[int, Mention]]] = {}
        for mention in mentions:
            by_paper.setdefault(mention.arxiv_id, []).append((offset, mention))
            newest = max(newest, mention.created_at.timestamp())
        as_of = datetime.fromtimestamp(newest, UTC)
        started = time.perf_counter()
        accounts = StagedAccounts(accounts_saved)
        done = []
        for arxiv_id, positioned in by_paper.items():
            summary = summaries.get(arxiv_id)
            state, update = count_paper_at(
                arxiv_id, summary, positioned, partition, accounts, as_of
            )
            papers[arxiv_id] = stored.pack_summary(state)
            done.append((update, counting.next_count_change(state, as_of)))
        for key, entry in accounts.changes.items():
            if entry is None:
                accounts_saved.pop(key, None)
            else:
                accounts_saved[key] = stored.pack_account_entry(entry)
        seconds += time.perf_counter() - started
        started = time.perf_counter()
        grouped = {
            arxiv_id: [m for _, m in positioned] for arxiv_id, positioned in by_paper.items()
        }
        alerts = books[partition].add(grouped, watermark, rules)
        for book in books.values():
            alerts += book.release(watermark, rules)
        alert_seconds += time.perf_counter() - started
        if offset % 10 == 0:
            logs_peak = max(logs_peak, sum(len(v) for s in logs.values() for v in s.values()))
        updates += len(done)
        for update, next_change in done:
            answers.update(update.to_json_bytes() + repr(next_change).encode())
        for alert in alerts:
            key = f"{alert.alert_id} {alert.triggered_at.isoformat()} "
            alert_keys.append(key + repr(sorted(alert.numbers.items())))
    for book in books.values():
        for alert in book.release(2**62, rules):
            key = f"{alert.alert_id} {alert.triggered_at.isoformat()} "
            alert_keys.append(key + repr(sorted(alert.numbers.items())))
    mentions_total = sum(len(m) for m in by_partition.values())
    sizes = [len(value) for value in papers.values()]
    return {
        "batch": batch,
        "mentions": mentions_total,
        "updates": updates,
        "alerts": len(alert_keys),
        "us_a_mention": round(seconds / mentions_total * 1e6, 2),
        "alert_us_a_mention": round(alert_seconds / mentions_total * 1e6, 2),
        "us_an_update": round(seconds / max(updates, 1) * 1e6, 2),
        "summary_bytes_mean": round(sum(sizes) / max(len(sizes), 1)),
        "summary_mb": round(sum(sizes) / 1e6, 1),
        "alert_logs_peak_mb": round(logs_peak / 1e6, 1),
        "digest": answers.hexdigest()[:16],
        "alerts_digest": hashlib.sha256("\n".join(sorted(alert_keys)).encode()).hexdigest()[:16],
        "alert_keys": alert_keys,
    }


def interleave(mentions: list[Mention], raw_partitions: int, chunk: int) -> list[Mention]:
    """`mentions` in the order a worker reading `raw_partitions` partitions in turns,
    `chunk` mentions a turn, can count them (each partition's own order kept)."""
    lanes: list[list[Mention]] = [[] for _ in range(raw_partitions)]
    for mention in mentions:
        lanes[partition_of(mention.post_id.encode(), raw_partitions)].append(mention)
    longest = max(len(lane) for lane in lanes)
    return [
        mention
        for start in range(0, longest, chunk)
        for lane in lanes
        for mention in lane[start : start + chunk]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, action="append", help="mentions a batch")
    parser.add_argument("--raw-partitions", type=int, default=0, help="interleave (see above)")
    parser.add_argument("--raw-chunk", type=int, default=100, help="mentions a turn")
    parser.add_argument("--name", default="counting")
    args = parser.parse_args()
    sizes = args.batch or [300, 3000]

    # As the worker runs (`TRENDING_WORKER_GC_THRESHOLD`).
    gc.set_threshold(50_000, 20, 100)
    rules = AlertRules()
    reference = simulate(generate(args.posts, args.seed), alert_rules=rules, keep_mentions=True)
    mentions = reference.mentions
    reference_keys = [
        f"{a.alert_id} {a.triggered_at.isoformat()} {sorted(a.numbers.items())!r}"
        for a in reference.alerts
    ]
    by_partition: dict[int, list[Mention]] = defaultdict(list)
    for mention in mentions:
        by_partition[partition_of(mention.arxiv_id.encode(), args.partitions)].append(mention)
    print(f"bench_counting: {len(mentions)} mentions of {args.posts} posts, core {native_state()}")
    runs = [count_in_batches(by_partition, size, rules) for size in sizes]
    if args.raw_partitions:
        interleaved = {
            partition: interleave(in_order, args.raw_partitions, args.raw_chunk)
            for partition, in_order in by_partition.items()
        }
        for size in sizes:
            run = count_in_batches(interleaved, size, rules)
            run["batch"] = f"{size}, {args.raw_partitions} raw"
            runs.append(run)
    for run in runs:
        keys = run.pop("alert_keys")
        run["alerts_differing"] = len(set(keys).symmetric_difference(reference_keys))
    common.print_table(
        "The counting agent's work alone (in process)",
        [
            (
                run["batch"],
                run["updates"],
                run["alerts"],
                run["us_a_mention"],
                run["alert_us_a_mention"],
                run["us_an_update"],
                run["summary_mb"],
                run["alert_logs_peak_mb"],
                run["digest"],
                run["alerts_digest"],
                run["alerts_differing"],
            )
            for run in runs
        ],
        [
            "batch",
            "updates",
            "alerts",
            "µs a mention",
            "alerts µs a mention",
            "µs an update",
            "summaries MB",
            "alert logs MB (peak)",
            "digest",
            "alerts digest",
            "alerts differing from simulate()",
        ],
    )
    common.save_result(args.name, vars(args), {"core": native_state(), "runs": runs})


if __name__ == "__main__":
    main()
