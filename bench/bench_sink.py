"""The Elasticsearch sink's write path: `ElasticsearchSink.write` against the hand-written
bulk loop it replaced, on the same batches and the same Elasticsearch, same run.

Each run writes `--batches` batches of `--batch-size` records (mentions and count
updates in the sink's proportions, papers Zipf-distributed) into fresh indices of a
fresh namespace, timing the writes only (building the operations is the same code for
both). The two paths alternate, `--runs` times each; the machine is noisy, so the table
gives the min and the median docs/s of each and their ratio.

    python -m bench.bench_sink [--batches 40] [--batch-size 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from elasticsearch import ApiError, Elasticsearch, TransportError

from bench import common
from sinks.elasticsearch_sink import RETRYABLE_STATUSES, ElasticsearchSink
from sinks.indices import ensure_indices
from trending_arxiv.core.models import CountUpdate, Mention
from trending_arxiv.retry import Stopped
from trending_arxiv.settings import SinkSettings


class Record(NamedTuple):
    """The fields of a kafka-python ConsumerRecord the sink reads."""

    topic: str
    partition: int
    offset: int
    value: bytes


def make_batches(
    settings: SinkSettings, batches: int, batch_size: int, seed: int
) -> list[list[Record]]:
    """Mentions (70%) and count updates (30%) of Zipf-distributed papers."""
    rng = random.Random(seed)
    papers = [f"{2400 + n // 10000:04d}.{n % 10000:05d}" for n in range(20_000)]
    weights = [1 / (rank + 1) ** 1.07 for rank in range(len(papers))]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[list[Record]] = []
    offset = 0
    for _ in range(batches):
        batch = []
        chosen = rng.choices(papers, weights, k=batch_size)
        for arxiv_id in chosen:
            offset += 1
            at = start + timedelta(seconds=offset)
            if rng.random() < 0.7:
                value = Mention(
                    post_id=str(offset),
                    arxiv_id=arxiv_id,
                    created_at=at,
                    source=rng.choice(("x", "bluesky")),
                    kind="post",
                    author_id=str(rng.randrange(50_000)),
                    author_handle=f"user{rng.randrange(50_000)}",
                    text="a post about arXiv:" + arxiv_id + " " + "words " * 30,
                ).to_json_bytes()
                topic = settings.topics.mentions
            else:
                count = rng.randrange(1, 500)
                value = CountUpdate(
                    arxiv_id=arxiv_id,
                    as_of=at,
                    posts={w: count for w in ("1h", "24h", "7d", "30d", "all")},
                    accounts={w: count for w in ("1h", "24h", "7d", "30d", "all")},
                    trend_score=rng.random() * 10,
                    velocity=rng.random(),
                    first_seen=start,
                    last_seen=at,
                    sources={"x": count},
                    trend_rank=rng.random() * 30,
                ).to_json_bytes()
                topic = settings.topics.counts
            batch.append(Record(topic, 0, offset, value))
        out.append(batch)
    return out


def write_by_hand(sink: ElasticsearchSink, operations: list[tuple[dict, Any]]) -> None:
    """The sink's previous write path (before streaming_bulk), kept here as the baseline."""
    pending = operations
    delay = 0.5
    while pending:
        body: list[Any] = []
        for action, doc in pending:
            body.append(action)
            if doc is not None:
                body.append(doc)
        try:
            response = sink.es.bulk(operations=body, refresh=False)
        except (TransportError, ApiError) as error:
            if sink.stop_event.is_set():
                raise Stopped("stopped while Elasticsearch was unavailable") from error
            sink.stop_event.wait(delay)
            delay = min(delay * 2, sink.settings.sink_max_retry_seconds)
            continue
        retry: list[tuple[dict, Any]] = []
        for (action, doc), item in zip(pending, response["items"], strict=True):
            op, result = next(iter(item.items()))
            status = result.get("status", 500)
            if status < 300 or (op == "delete" and status == 404):
                sink._count_success(op)
            elif status in RETRYABLE_STATUSES:
                retry.append((action, doc))
            else:
                raise RuntimeError(f"rejected {op} ({status}): {json.dumps(result)[:500]}")
        if retry:
            sink.stop_event.wait(delay)
            delay = min(delay * 2, sink.settings.sink_max_retry_seconds)
        pending = retry


def one_run(
    path: str,
    write: Callable[[ElasticsearchSink, list[tuple[dict, Any]]], None],
    batches: list[list[Record]],
    settings: SinkSettings,
) -> dict[str, Any]:
    es = Elasticsearch(common.ES_URL, request_timeout=120)
    ensure_indices(es, settings, settings.sink_refresh_interval)
    sink = ElasticsearchSink(settings, es=es, metadata_lookup=lambda ids: {})
    prepared = [sink.build_operations(batch) for batch in batches]
    operations = sum(len(ops) for ops in prepared)
    began, cpu_began = time.perf_counter(), time.process_time()
    for ops in prepared:
        write(sink, ops)
    seconds = time.perf_counter() - began
    cpu_us = (time.process_time() - cpu_began) / operations * 1e6
    written = sink.stats.mentions_indexed + sink.stats.paper_updates
    assert written == operations, f"{path}: {written} of {operations} acknowledged"
    es.options(ignore_status=404).indices.delete(
        index=f"{settings.namespace}-*", expand_wildcards="all"
    )
    return {
        "path": path,
        "operations": operations,
        "seconds": seconds,
        "docs_s": operations / seconds,
        "client_cpu_us_per_doc": cpu_us,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    common.exit_on_sigterm()

    namespace = common.fresh_namespace("sink")
    settings = SinkSettings(
        kafka_bootstrap_servers=common.KAFKA, elasticsearch_url=common.ES_URL, namespace=namespace
    )
    batches = make_batches(settings, args.batches, args.batch_size, args.seed)
    paths: dict[str, Callable[[ElasticsearchSink, list[tuple[dict, Any]]], None]] = {
        "hand-written bulk loop (before)": write_by_hand,
        "ElasticsearchSink.write: streaming_bulk + tenacity": ElasticsearchSink.write,
    }
    runs: list[dict[str, Any]] = []
    try:
        one_run("warm-up", ElasticsearchSink.write, batches[:5], settings)
        for repetition in range(args.runs):
            # ABBA: each path goes first every other time, so neither always follows
            # the other's index deletion.
            order = list(paths.items())
            if repetition % 2:
                order.reverse()
            for name, write in order:
                runs.append(one_run(name, write, batches, settings) | {"repetition": repetition})
                last = runs[-1]
                print(
                    f"{name}: {last['docs_s']:,.0f} docs/s, "
                    f"client CPU {last['client_cpu_us_per_doc']:.1f} µs/doc",
                    flush=True,
                )
    finally:
        common.delete_namespace(namespace)

    summary: dict[str, dict[str, float]] = {}
    for name in paths:
        rates = [r["docs_s"] for r in runs if r["path"] == name]
        cpu = [r["client_cpu_us_per_doc"] for r in runs if r["path"] == name]
        summary[name] = {
            "min": min(rates),
            "median": statistics.median(rates),
            "client_cpu_us_per_doc_median": statistics.median(cpu),
        }
    before, after = (summary[name] for name in paths)
    ratio = {k: after[k] / before[k] for k in ("min", "median")}
    # Each after-run against the before-run next to it: the machine's load drifts.
    names = list(paths)
    rate = {(r["repetition"], r["path"]): r["docs_s"] for r in runs}
    pairs = [rate[i, names[1]] / rate[i, names[0]] for i in range(args.runs)]
    ratio["paired_median"] = statistics.median(pairs)
    ratio["client_cpu"] = (
        after["client_cpu_us_per_doc_median"] / before["client_cpu_us_per_doc_median"]
    )
    common.print_table(
        f"Sink writes: {args.batches} batches of {args.batch_size} records, {args.runs} runs each",
        [
            [name, s["min"], s["median"], f"{s['client_cpu_us_per_doc_median']:.1f}"]
            for name, s in summary.items()
        ]
        + [
            [
                "ratio after/before",
                f"{ratio['min']:.3f}",
                f"{ratio['median']:.3f} (paired runs: {ratio['paired_median']:.3f})",
                f"{ratio['client_cpu']:.3f}",
            ]
        ],
        ["path", "min docs/s", "median docs/s", "client CPU µs/doc (median)"],
    )
    path = common.save_result(
        "sink",
        vars(args),
        {"runs": runs, "summary": summary, "ratio_after_before": ratio},
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
