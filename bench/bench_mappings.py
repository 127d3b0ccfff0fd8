"""Elasticsearch's CPU a mention document under the shipped mapping and an earlier one.

The mentions of the bench corpus (`simulate()`'s: parsed and stepped through the
ledger, as the worker does) are bulk-indexed into a fresh index with the shipped
`MENTIONS_MAPPINGS`, then into one with the mapping before session 18 (`post_id` and
`ref_post_id` indexed), then again, alternating, `--repeats` times each, at the sink's
refresh interval. Only the bulk writes and a final refresh are timed; the table gives
Elasticsearch's CPU a document (its process's user + system time) and the ratio of the
medians.

    python -m bench.bench_mappings [--posts 300000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import uuid
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from bench import common
from bench.corpus import generate
from sinks.indices import MENTIONS_MAPPINGS
from trending_arxiv.core.documents import mention_document
from trending_arxiv.core.simulate import simulate
from trending_arxiv.settings import SinkSettings


def earlier_mapping() -> dict[str, Any]:
    """The mentions mapping before session 18: the post ids indexed as terms."""
    mapping = copy.deepcopy(MENTIONS_MAPPINGS)
    for name in ("post_id", "ref_post_id"):
        mapping["properties"][name] = {"type": "keyword"}
    return mapping


MAPPINGS = {"shipped": MENTIONS_MAPPINGS, "post ids indexed": earlier_mapping()}


def index_once(
    es: Elasticsearch,
    es_pid: int,
    mapping: dict[str, Any],
    docs: list[tuple[str, dict[str, Any]]],
    refresh_interval: str,
) -> dict[str, float]:
    """Bulk-index `docs` into a fresh index with `mapping`; Elasticsearch's CPU and wall."""
    index = f"bench-mappings-{uuid.uuid4().hex[:8]}"
    es.indices.create(
        index=index,
        settings={
            "number_of_shards": 1,
            "number_of_replicas": 0,
            "refresh_interval": refresh_interval,
        },
        mappings=mapping,
    )
    try:
        actions = (
            {"_op_type": "index", "_index": index, "_id": doc_id, "_source": doc}
            for doc_id, doc in docs
        )
        cpu_before = common.cpu_seconds(es_pid) or 0.0
        started = time.perf_counter()
        for _ok, _item in streaming_bulk(es, actions, chunk_size=2000, max_chunk_bytes=8 << 20):
            pass
        es.indices.refresh(index=index)
        wall = time.perf_counter() - started
        cpu = (common.cpu_seconds(es_pid) or 0.0) - cpu_before
    finally:
        es.indices.delete(index=index)
    return {"es_cpu_us_a_doc": round(cpu / len(docs) * 1e6, 2), "seconds": round(wall, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="mappings")
    args = parser.parse_args()

    es_pid = common.server_pids().get("elasticsearch")
    if es_pid is None:
        raise SystemExit("no Elasticsearch listening: start the stack (trending-arxiv stack up)")
    settings = SinkSettings()
    es = Elasticsearch(**settings.elasticsearch_client_kwargs())
    mentions = simulate(generate(args.posts, args.seed), keep_mentions=True).mentions
    docs = [(m.document_id, mention_document(m, None)) for m in mentions if m.op == "add"]
    print(f"bench_mappings: {len(docs)} mention documents of {args.posts} posts")

    index_once(es, es_pid, MENTIONS_MAPPINGS, docs, settings.sink_refresh_interval)  # warm-up
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in MAPPINGS}
    for _ in range(args.repeats):
        for name, mapping in MAPPINGS.items():
            runs[name].append(index_once(es, es_pid, mapping, docs, settings.sink_refresh_interval))
    cpu = {name: [run["es_cpu_us_a_doc"] for run in done] for name, done in runs.items()}
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    common.print_table(
        "Elasticsearch's CPU a mention document (µs), alternating runs",
        [
            (name, ", ".join(f"{v:.1f}" for v in cpu[name]), min(cpu[name]), medians[name])
            for name in MAPPINGS
        ],
        ["mapping", "runs", "min", "median"],
    )
    ratio = medians["shipped"] / medians["post ids indexed"]
    print(f"shipped / post ids indexed (medians): {ratio:.3f}x")
    common.save_result(
        args.name,
        vars(args),
        {"documents": len(docs), "runs": runs, "median_ratio": round(ratio, 3)},
    )


if __name__ == "__main__":
    main()
