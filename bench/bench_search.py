"""Benchmark: trending and search latency (p50/p99) and catalog-load docs/s on the local ES.

Into a throw-away namespace (`bench-<hex>`, deleted at the end):

1. writes a generated Kaggle-snapshot file of N papers (titles and abstracts drawn from the
   vocabulary of the recorded 200-line sample) and loads it with `sinks.catalog_loader`
   (the `catalog load` code path, into an index created as `trending-arxiv` creates it),
   which gives catalog-load docs/s, plus the CPU time per document of this process
   (parsing, documents, requests) and of the Elasticsearch node (indexing);
2. generates M mention documents, Zipf-distributed over the papers (and over 50k
   accounts), over the 30 days before a fixed `as_of`; bulk-indexes them and the papers'
   per-window counts (parallel bulk helpers);
3. refreshes and force-merges every index to one segment (a static data set, as after a
   bulk load; a live index has more segments), then runs every query shape R times after
   R/10 untimed warm-up runs and reports client-side latency (the whole
   `trending_arxiv.search.queries`
   call: every HTTP round trip and the Python around it) p50/p99, plus Elasticsearch's
   own `took` (summed over the searches of one call). No request cache is asked for.

Prints a table and writes `bench/results/search.json` (machine, versions, git commit,
load average before and after: the machine is shared, so latencies are noisy).

    python -m bench.bench_search [--quick] [--mentions N] [--papers N] [--runs R]
        [--catalog-runs K] [--catalog-only]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import os
import pathlib
import platform
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, ClassVar

from elasticsearch import Elasticsearch
from elasticsearch.helpers import parallel_bulk
from rich.console import Console
from rich.table import Table

from sinks.catalog import iter_catalog_file
from sinks.catalog_loader import (
    BulkChunk,
    LoadSummary,
    catalog_documents,
    chunked,
    load_catalog,
    send_chunk,
)
from sinks.indices import ensure_indices
from trending_arxiv.core.models import WINDOW_SECONDS, WINDOWS, to_utc_iso
from trending_arxiv.core.vocabulary import SOURCES
from trending_arxiv.search.follows import store_follow_list
from trending_arxiv.search.papers import SearchQuery, search_papers
from trending_arxiv.search.queries import TrendingQuery, top_papers
from trending_arxiv.settings import CommonSettings

ROOT = pathlib.Path(__file__).resolve().parents[1]

SAMPLE = ROOT.parent / "shared" / "fixtures" / "real" / "arxiv_kaggle_snapshot_first200.jsonl"
AS_OF = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACCOUNTS = 50_000
CATEGORIES = ("cs.LG", "cs.CL", "cs.CV", "hep-th", "hep-ph", "quant-ph", "math.CO", "astro-ph.GA",
              "cond-mat.str-el", "stat.ML")  # fmt: skip
GOALS = {
    "trending_p50_ms": 20.0,
    "trending_p99_ms": 100.0,
    "catalog_docs_per_s": 10_000.0,
    "catalog_ratio_to_elasticsearch_only": 0.9,
    "catalog_loader_cpu_us_per_doc": 20.0,
}
CATALOG_CHUNK = 5000
CATALOG_THREADS = 2
console = Console()


class TookClient(Elasticsearch):
    """A client that adds up Elasticsearch's own `took` of every response that has one.

    Class-level, because `options()` makes new clients of the same class.
    """

    took_ms: ClassVar[float] = 0.0

    def perform_request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().perform_request(*args, **kwargs)
        body = response.body
        if isinstance(body, dict) and isinstance(body.get("took"), int | float):
            TookClient.took_ms += body["took"]
        return response


def zipf_sampler(n: int, s: float, rng: random.Random) -> Callable[[], int]:
    """Ranks 0..n-1 drawn with probability proportional to 1/(rank+1)^s."""
    cumulative = list(itertools.accumulate(1.0 / (k + 1) ** s for k in range(n)))
    total = cumulative[-1]
    return lambda: bisect.bisect_left(cumulative, rng.random() * total)


def vocabulary() -> list[str]:
    words: list[str] = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for text in (record["title"], record["abstract"]):
            words += [w.strip(".,;:()$\\{}").lower() for w in text.split()]
    return [w for w in words if w.isalpha() and len(w) > 2]


def paper_ids(n: int) -> list[str]:
    """n distinct new-style IDs, 2401.00001 on (5 digits, like today's)."""
    ids = []
    for k in range(n):
        month = 1 + (k // 99_999) % 12
        year = 24 + k // (99_999 * 12)
        ids.append(f"{year:02d}{month:02d}.{k % 99_999 + 1:05d}")
    return ids


def write_catalog(path: pathlib.Path, ids: list[str], rng: random.Random) -> None:
    words = vocabulary()
    with path.open("w", encoding="utf-8") as out:
        for k, arxiv_id in enumerate(ids):
            created = AS_OF - timedelta(days=rng.uniform(0, 800))
            cats = rng.sample(CATEGORIES, rng.randint(1, 3))
            authors = [(rng.choice(words).title(), rng.choice(words).title(), "")
                       for _ in range(rng.randint(1, 5))]  # fmt: skip
            record = {
                "id": arxiv_id,
                "submitter": authors[0][1],
                "authors": ", ".join(f"{a[1]} {a[0]}" for a in authors),
                "title": " ".join(rng.choices(words, k=8)).capitalize() + f" {k}",
                "comments": None, "journal-ref": None, "doi": None, "report-no": None,
                "categories": " ".join(cats),
                "license": None,
                "abstract": " ".join(rng.choices(words, k=120)),
                "versions": [{"version": "v1", "created": format_datetime(created, usegmt=True)}],
                "update_date": created.date().isoformat(),
                "authors_parsed": [list(a) for a in authors],
            }  # fmt: skip
            out.write(json.dumps(record) + "\n")


def mention_actions(
    index: str, ids: list[str], count: int, rng: random.Random, totals: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    pick_paper = zipf_sampler(len(ids), 1.1, rng)
    pick_account = zipf_sampler(ACCOUNTS, 1.0, rng)
    span = 30 * 86400.0
    for n in range(count):
        arxiv_id = ids[pick_paper()]
        source = SOURCES[n % 3]
        account = f"{source}:{pick_account()}"
        age = rng.random() * span
        moment = AS_OF - timedelta(seconds=age)
        per = totals[arxiv_id]
        for window in WINDOWS:
            limit = WINDOW_SECONDS[window]
            if limit is None or age <= limit:
                per["posts"][window] += 1
                per["accounts"][window].add(account)
        per["sources"][source] += 1
        per["first"] = min(per["first"], moment)
        per["last"] = max(per["last"], moment)
        yield {
            "_index": index,
            "_id": f"{source}-{n}|{arxiv_id}",
            "_source": {
                "@timestamp": to_utc_iso(moment), "post_id": f"{source}-{n}",
                "arxiv_id": arxiv_id, "source": source, "kind": "post",
                "author_id": account.split(":", 1)[1], "account": account,
                "author_handle": f"user{account}", "text": f"look at arxiv.org/abs/{arxiv_id}",
            },
        }  # fmt: skip


def count_actions(index: str, totals: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for arxiv_id, per in totals.items():
        recent = per["posts"]["24h"]
        score = recent + 0.1 * per["posts"]["7d"]
        yield {
            "_op_type": "update", "_index": index, "_id": arxiv_id, "doc_as_upsert": True,
            "doc": {
                "arxiv_id": arxiv_id, "posts": dict(per["posts"]),
                "accounts": {w: len(a) for w, a in per["accounts"].items()},
                "trend_score": score, "velocity": 0.0,
                "trend_rank": math.log2(score) if score > 0 else None,
                "sources": dict(per["sources"]), "counts_as_of": to_utc_iso(AS_OF),
                "first_seen": to_utc_iso(per["first"]), "last_seen": to_utc_iso(per["last"]),
            },
        }  # fmt: skip


def bulk_all(es: Elasticsearch, actions: Iterator[dict[str, Any]]) -> tuple[int, float]:
    started = time.perf_counter()
    done = 0
    for ok, item in parallel_bulk(es, actions, thread_count=2, chunk_size=5000, queue_size=4):
        if not ok:
            raise RuntimeError(f"bulk item failed: {item}")
        done += 1
    return done, time.perf_counter() - started


def warmups(runs: int) -> int:
    return max(3, runs // 10)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure(run: Callable[[], Any], runs: int) -> dict[str, float]:
    for _ in range(warmups(runs)):
        run()  # warm caches, as a serving system would be
    samples, took = [], []
    for _ in range(runs):
        TookClient.took_ms = 0.0
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
        took.append(TookClient.took_ms)
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
        "mean_ms": round(statistics.fmean(samples), 2),
        "es_took_p50_ms": round(statistics.median(took), 2),
        "es_took_p99_ms": round(percentile(took, 0.99), 2),
        "runs": runs,
    }


def node_cpu_ms(es: Elasticsearch) -> int:
    """CPU time of the Elasticsearch node's process so far."""
    stats = es.nodes.stats(node_id="_local", metric="process", filter_path="nodes.*.process.cpu")
    return int(next(iter(stats["nodes"].values()))["process"]["cpu"]["total_in_millis"])


def load_catalog_timed(
    es: Elasticsearch, settings: CommonSettings, catalog: pathlib.Path
) -> dict[str, Any]:
    """Time `load_catalog` of `catalog` into `settings`' papers index (docs/s, CPU per doc)."""
    es_cpu, own_cpu = node_cpu_ms(es), time.process_time()
    summary = load_catalog(es, settings, catalog, console=console,
                           chunk_size=CATALOG_CHUNK, threads=CATALOG_THREADS)  # fmt: skip
    es_cpu, own_cpu = node_cpu_ms(es) - es_cpu, time.process_time() - own_cpu
    docs = max(1, summary.written)
    return {
        "docs": summary.written, "seconds": round(summary.seconds, 2),
        "docs_per_s": round(summary.docs_per_second),
        "chunk_size": CATALOG_CHUNK, "threads": CATALOG_THREADS,
        "loader_cpu_us_per_doc": round(own_cpu * 1e6 / docs, 1),
        # The node's whole process: other users of a shared node show up here too.
        "es_cpu_us_per_doc": round(es_cpu * 1e3 / docs, 1),
        "load_average_after": os.getloadavg()[0],
    }  # fmt: skip


def write_real_shaped_catalog(path: pathlib.Path, ids: list[str]) -> None:
    """The recorded 200 snapshot lines over and over, each with an ID of `ids`: the real
    shape (long indented abstracts, several versions, suffixes, non-ASCII names)."""
    lines = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    with path.open("w", encoding="utf-8") as out:
        for k, arxiv_id in enumerate(ids):
            out.write(json.dumps({**lines[k % len(lines)], "id": arxiv_id}) + "\n")


def catalog_loads(
    es: Elasticsearch,
    settings: CommonSettings,
    ids: list[str],
    rng: random.Random,
    runs: int,
    shape: str = "synthetic",
) -> dict[str, Any]:
    """Load one catalog file `runs` times, each into a fresh index (the last one is kept
    for the queries), each run paired with Elasticsearch alone on the same papers as
    ready bulk bodies; the two alternate which goes first. The machine is shared, so the
    ratio is taken within each pair and its median reported, with the median run."""
    timed, alone, ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        catalog = pathlib.Path(tmp) / "snapshot.jsonl"
        console.print(f"writing a {len(ids):,}-paper Kaggle-format catalog ({shape}) ...")
        if shape == "real":
            write_real_shaped_catalog(catalog, ids)
        else:
            write_catalog(catalog, ids, rng)
        bodies = ready_bodies(catalog)
        for run in range(runs):
            last = run == runs - 1
            target = settings if last else CommonSettings(namespace=f"{settings.namespace}-l{run}")
            ensure_indices(es, target)  # as the CLI does: the loader tunes refreshes itself
            try:
                if run % 2:
                    alone.append(bulk_ceiling(es, settings, bodies, run))
                timed.append(load_catalog_timed(es, target, catalog))
                if not run % 2:
                    alone.append(bulk_ceiling(es, settings, bodies, run))
            finally:
                if not last:
                    cleanup(es, target.namespace)
            ratios.append(round(timed[-1]["docs_per_s"] / alone[-1]["docs_per_s"], 2))
            loaded, bare = timed[-1], alone[-1]
            console.print(f"catalog load {run + 1}/{runs}: {loaded['docs_per_s']:,} docs/s, "
                          f"loader {loaded['loader_cpu_us_per_doc']} us/paper; Elasticsearch "
                          f"alone {bare['docs_per_s']:,} docs/s; ratio {ratios[-1]}")  # fmt: skip
    median = sorted(timed, key=lambda r: r["docs_per_s"])[len(timed) // 2]
    ceiling = sorted(alone, key=lambda r: r["docs_per_s"])[len(alone) // 2]
    return {
        **median,
        "shape": shape,
        "loader_cpu_us_per_doc_median": statistics.median(
            r["loader_cpu_us_per_doc"] for r in timed
        ),
        "runs": timed,
        "elasticsearch_only": ceiling,
        "elasticsearch_only_runs": alone,
        "ratios_to_elasticsearch_only": ratios,
        "ratio_to_elasticsearch_only": statistics.median(ratios),
    }


@dataclass
class ReadyChunk(BulkChunk):
    """A chunk whose whole NDJSON body was built before the clock started (a retry of
    some of its papers builds its own, as the loader's does)."""

    body: bytes = b""

    def lines(self, positions: Iterable[int]) -> bytes:
        positions = list(positions)
        return self.body if len(positions) == len(self.ids) else super().lines(positions)


def ready_bodies(catalog: pathlib.Path) -> list[ReadyChunk]:
    """The papers of `catalog` as bulk bodies, parsed and serialized beforehand."""
    summary = LoadSummary(path=str(catalog))
    documents = catalog_documents(iter_catalog_file(catalog), summary, datetime.now(UTC))
    return [
        ReadyChunk(
            chunk.op, chunk.ids, chunk.sources, chunk.size, chunk.lines(range(len(chunk.ids)))
        )
        for chunk in chunked(documents, "create", CATALOG_CHUNK, 64 << 20)
    ]


def bulk_ceiling(
    es: Elasticsearch, settings: CommonSettings, chunks: list[ReadyChunk], run: int
) -> dict[str, Any]:
    """Baseline: the same papers as ready bulk bodies (parsed and serialized beforehand,
    untimed), sent the same way (`send_chunk`, the same threads) into a fresh index and
    refreshed at the end, as the loader does: what Elasticsearch alone does here."""
    target = CommonSettings(namespace=f"{settings.namespace}-ceiling{run}")
    ensure_indices(es, target)
    index = target.indices.papers
    try:
        es.indices.put_settings(index=index, settings={"refresh_interval": "30s"})
        es_cpu, started = node_cpu_ms(es), time.perf_counter()
        with ThreadPoolExecutor(CATALOG_THREADS) as pool:
            results = list(pool.map(lambda chunk: send_chunk(es, index, chunk), chunks))
        es.indices.refresh(index=index)  # searchable at the end, as the loader leaves them
        seconds = time.perf_counter() - started
        es_cpu = node_cpu_ms(es) - es_cpu
    finally:
        cleanup(es, target.namespace)
    docs = sum(1 for chunk in results for item in chunk if item.get("status") == 201)
    return {"docs": docs, "seconds": round(seconds, 2), "docs_per_s": round(docs / seconds),
            "es_cpu_us_per_doc": round(es_cpu * 1e3 / max(1, docs), 1),
            "load_average_after": os.getloadavg()[0]}  # fmt: skip


def shapes(es: Elasticsearch, settings: CommonSettings) -> dict[str, Callable[[], Any]]:
    def top(**kw: Any) -> Callable[[], Any]:
        return lambda: top_papers(es, settings, TrendingQuery(**kw))

    def search(text: str, **kw: Any) -> Callable[[], Any]:
        return lambda: search_papers(es, settings, SearchQuery(text, **kw))

    return {
        "trending all by posts": top(window="all"),
        "trending 24h by posts": top(window="24h"),
        "trending 7d by accounts": top(window="7d", sort="accounts"),
        "trending 24h by score, cs.LG": top(window="24h", sort="score", category="cs.LG"),
        "trending 7d by date": top(window="7d", sort="date"),
        "trending 7d by field": top(window="7d", sort="field"),
        "trending 24h by field, page 3": top(window="24h", sort="field", offset=40),
        "trending as_of 7d by field (mentions)": top(window="7d", sort="field", as_of=AS_OF),
        "trending as_of 24h (mentions)": top(window="24h", as_of=AS_OF - timedelta(days=3)),
        "trending 7d source=x (mentions)": top(window="7d", source="x", as_of=AS_OF),
        "trending 7d user (mentions)": top(window="7d", user="bench-user", as_of=AS_OF),
        "search one word": search("quantum"),
        "search two words + category": search("graph field", category="hep-th"),
        "search phrase": search('"dark matter"'),
        "search prefix, sort posts 7d": search("partic*", sort="posts", window="7d"),
    }


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": os.cpu_count()}  # fmt: skip
    try:
        with open("/proc/meminfo") as meminfo:
            info["memory_kb"] = int(meminfo.readline().split()[1])
    except OSError:
        pass
    return info


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None


def cleanup(es: Elasticsearch, namespace: str) -> None:
    es.options(ignore_status=404).indices.delete(index=f"{namespace}-*", expand_wildcards="all")
    templates = es.options(ignore_status=404).indices.get_index_template(name=f"{namespace}-*")
    for template in templates.get("index_templates", []):
        es.indices.delete_index_template(name=template["name"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k mentions, 20k papers.")
    parser.add_argument("--mentions", type=int, default=None)
    parser.add_argument("--papers", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None, help="Timed runs per query shape.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--catalog-runs",
        type=int,
        default=1,
        help="Catalog loads, each into a fresh index; the median is reported.",
    )
    parser.add_argument(
        "--catalog-shape",
        choices=("synthetic", "real"),
        default="synthetic",
        help="Catalog lines generated from the sample's words, or the 200 recorded snapshot "
        "lines over and over with new IDs.",
    )
    parser.add_argument(
        "--catalog-only",
        action="store_true",
        help="Only the catalog load (no mentions, no query timings).",
    )
    parser.add_argument("--output", type=pathlib.Path, default=ROOT / "bench/results/search.json")
    args = parser.parse_args()
    mentions = args.mentions or (100_000 if args.quick else 1_000_000)
    papers = args.papers or (20_000 if args.quick else 200_000)
    runs = args.runs or (100 if args.quick else 300)
    rng = random.Random(args.seed)
    settings = CommonSettings(namespace=f"bench-{uuid.uuid4().hex[:8]}")
    es = TookClient(**settings.elasticsearch_client_kwargs(), request_timeout=120)
    # The minimal distribution has no `GET /`; the nodes API has the version everywhere.
    nodes = es.nodes.info(node_id="_local", filter_path="nodes.*.version,nodes.*.build_flavor")
    server = next(iter(nodes["nodes"].values()))
    results: dict[str, Any] = {
        "benchmark": "search",
        "date": to_utc_iso(datetime.now(UTC)),
        "params": {"mentions": mentions, "papers": papers, "runs": runs, "seed": args.seed,
                   "quick": args.quick, "catalog_runs": args.catalog_runs,
                   "catalog_shape": args.catalog_shape},
        "machine": machine(),
        "versions": {"elasticsearch_server": server["version"],
                     "elasticsearch_distribution": server.get("build_flavor"),
                     "elasticsearch_py": __import__("elasticsearch").__versionstr__},
        "git_commit": git_commit(),
        "goals": GOALS,
        "method": {
            "latency": "client side, whole trending_arxiv.search.queries call (all round trips)",
            "warmup_runs_per_shape": warmups(runs),
            "indices": "refreshed and force-merged to 1 segment before timing",
            "request_cache": "not requested (size>0 searches are not cached by default)",
        },
        "load_average_before": os.getloadavg(),
    }  # fmt: skip
    try:
        ids = paper_ids(papers)
        results["catalog_load"] = catalog_loads(es, settings, ids, rng, args.catalog_runs,
                                                args.catalog_shape)  # fmt: skip
        if args.catalog_only:
            return report_catalog_only(results, args.output)
        for index in (settings.indices.papers, settings.indices.mentions):
            es.indices.put_settings(index=index, settings={"refresh_interval": "-1"})
        console.print(f"loading {mentions:,} mentions ...")
        totals: dict[str, Any] = defaultdict(lambda: {
            "posts": dict.fromkeys(WINDOWS, 0), "accounts": {w: set() for w in WINDOWS},
            "sources": dict.fromkeys(SOURCES, 0),
            "first": AS_OF, "last": AS_OF - timedelta(days=365)})  # fmt: skip
        done, seconds = bulk_all(es, mention_actions(settings.indices.mentions, ids, mentions,
                                                     rng, totals))  # fmt: skip
        results["mentions_load"] = {"docs": done, "seconds": round(seconds, 2),
                                    "docs_per_s": round(done / seconds)}  # fmt: skip
        done, seconds = bulk_all(es, count_actions(settings.indices.papers, totals))
        results["counts_load"] = {"docs": done, "seconds": round(seconds, 2)}
        for index in (settings.indices.papers, settings.indices.mentions, settings.indices.follows):
            es.indices.put_settings(index=index, settings={"refresh_interval": "1s"})
            es.indices.refresh(index=index)
            es.indices.forcemerge(index=index, max_num_segments=1, wait_for_completion=True)
        follows = sorted({f"{SOURCES[k % 3]}:{k}" for k in rng.sample(range(ACCOUNTS), 2000)})
        store_follow_list(es, settings, "bench-user", follows)
        console.print(f"timing {runs} runs per query shape ...")
        results["queries"] = {
            name: measure(run, runs) for name, run in shapes(es, settings).items()
        }
    finally:
        cleanup(es, settings.namespace)
    results["load_average_after"] = os.getloadavg()

    trending = [v for k, v in results["queries"].items() if k.startswith("trending")]
    results["summary"] = {
        "trending_p50_ms_max": max(v["p50_ms"] for v in trending),
        "trending_p99_ms_max": max(v["p99_ms"] for v in trending),
        "catalog_docs_per_s": results["catalog_load"]["docs_per_s"],
    }
    table = Table(title=f"search bench: {mentions:,} mentions, {papers:,} papers "
                        f"(ES {results['versions']['elasticsearch_server']})")  # fmt: skip
    for column in ("query shape", "p50 ms", "p99 ms", "mean ms", "ES took p50", "p99"):
        table.add_column(column, justify="left" if column == "query shape" else "right")
    for name, numbers in results["queries"].items():
        table.add_row(name, f"{numbers['p50_ms']:.1f}", f"{numbers['p99_ms']:.1f}",
                      f"{numbers['mean_ms']:.1f}", f"{numbers['es_took_p50_ms']:.0f}",
                      f"{numbers['es_took_p99_ms']:.0f}")  # fmt: skip
    console.print(table)
    load = results["catalog_load"]
    console.print(f"catalog load: {load['docs']:,} docs in {load['seconds']} s = "
                  f"{load['docs_per_s']:,} docs/s (CPU per doc: loader "
                  f"{load['loader_cpu_us_per_doc']} us, Elasticsearch "
                  f"{load['es_cpu_us_per_doc']} us); mentions bulk: "
                  f"{results['mentions_load']['docs_per_s']:,} docs/s")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {args.output}")
    return 0


def report_catalog_only(results: dict[str, Any], output: pathlib.Path) -> int:
    load = results["catalog_load"]
    results["summary"] = {
        "catalog_docs_per_s": load["docs_per_s"],
        "catalog_ratio_to_elasticsearch_only": load["ratio_to_elasticsearch_only"],
        "catalog_loader_cpu_us_per_doc": load["loader_cpu_us_per_doc_median"],
    }
    table = Table(title=f"catalog load, {load['shape']} (each run into a fresh papers index)")
    for column in ("run", "docs/s", "loader us/doc", "ES us/doc", "ES alone docs/s", "ratio",
                   "load avg after"):  # fmt: skip
        table.add_column(column, justify="right")
    for k, (run, alone) in enumerate(zip(load["runs"], load["elasticsearch_only_runs"],
                                         strict=True), 1):  # fmt: skip
        table.add_row(str(k), f"{run['docs_per_s']:,}", str(run["loader_cpu_us_per_doc"]),
                      str(run["es_cpu_us_per_doc"]), f"{alone['docs_per_s']:,}",
                      str(load["ratios_to_elasticsearch_only"][k - 1]),
                      f"{run['load_average_after']:.1f}")  # fmt: skip
    console.print(table)
    ceiling = load["elasticsearch_only"]
    console.print(f"median: {load['docs_per_s']:,} docs/s, loader "
                  f"{load['loader_cpu_us_per_doc_median']} us CPU/paper (goal "
                  f"{GOALS['catalog_loader_cpu_us_per_doc']:.0f}); Elasticsearch alone on ready "
                  f"bodies: {ceiling['docs_per_s']:,} docs/s ({ceiling['es_cpu_us_per_doc']} "
                  f"us/doc); ratio (median of pairs) {load['ratio_to_elasticsearch_only']} "
                  f"(goal {GOALS['catalog_ratio_to_elasticsearch_only']})")  # fmt: skip
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
