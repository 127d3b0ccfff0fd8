"""Elasticsearch with nothing upstream, and the sink alone: an end-to-end run's writes again.

`bench_e2e --es-alone` reads back every record the sink consumed in its run (the
mentions and count-update topics) and, with the producer, Kafka's other clients, the
worker and the run's sink all stopped, times two things on them, alternating:

- **Elasticsearch alone** (`elasticsearch_alone`): the sink's bulk operations, built
  from the records in its batch size before the clock; only their writes are timed
  (`ElasticsearchSink.write`: the sink's own bulk path, then a refresh) into fresh
  indices of another namespace. The rate, in the run's posts per second, is what
  Elasticsearch on this machine allows the pipeline.
- **the sink alone** (`sink_alone`): the real sink (`ElasticsearchSink.run`: its
  kafka-python consumer in a fresh group, decoding, documents, catalog lookups, bulk
  writes, offset commits) on the same pre-filled topics into fresh indices. The clock
  starts at its first batch (the group join is start-up) and stops at its last write,
  plus the same refresh.

Their ratio is issue 15's "the sink >= 0.8x Elasticsearch alone bulk-indexing the same
documents".
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import psutil
from kafka import KafkaConsumer, TopicPartition

from bench import common
from sinks.elasticsearch_sink import ElasticsearchSink
from sinks.indices import ensure_indices
from trending_arxiv.runtime import collect_garbage_rarely
from trending_arxiv.settings import SinkSettings


def read_back(topics: list[str]) -> list[Any]:
    """Every record of `topics`, each topic's partitions one after another."""
    consumer = KafkaConsumer(
        bootstrap_servers=common.KAFKA,
        enable_auto_commit=False,
        max_partition_fetch_bytes=10_485_760,
        fetch_max_bytes=52_428_800,
    )
    records: list[Any] = []
    try:
        for topic in topics:
            for partition in sorted(consumer.partitions_for_topic(topic) or ()):
                tp = TopicPartition(topic, partition)
                consumer.assign([tp])
                consumer.seek_to_beginning(tp)
                end = consumer.end_offsets([tp])[tp]
                while consumer.position(tp) < end:
                    for batch in consumer.poll(timeout_ms=1000).values():
                        records.extend(batch)
    finally:
        consumer.close()
    return records


def _redirect(operations: list[tuple[dict, Any]], renamed: dict[str, str]) -> None:
    """Point operations built for the run's indices at the fresh ones, in place."""
    for action, _body in operations:
        meta = next(iter(action.values()))
        meta["_index"] = renamed.get(meta["_index"], meta["_index"])


def _fresh_target(source: SinkSettings, es: Any) -> tuple[SinkSettings, dict[str, str]]:
    """Fresh indices of a new namespace, and the run's index names mapped to them."""
    target = SinkSettings(namespace=common.fresh_namespace("stage-alone"))
    ensure_indices(es, target, target.sink_refresh_interval)
    renamed = {
        source.indices.mentions: target.indices.mentions,
        source.indices.papers: target.indices.papers,
    }
    return target, renamed


@contextlib.contextmanager
def _heap_frozen() -> Any:
    """The objects alive now (the records read back, operations built before the clock)
    left out of garbage collection meanwhile: a sink process holds none of them, and
    collections scanning them cost the stage under test ~40% more CPU. The collector
    runs as in the sink process meanwhile (`sink_gc_threshold`, set by `trending-arxiv
    sink`)."""
    gc.collect()
    gc.freeze()
    threshold = collect_garbage_rarely(SinkSettings().sink_gc_threshold)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _refresh_seconds(es: Any, target: SinkSettings) -> float:
    started = time.perf_counter()
    es.indices.refresh(index=[target.indices.mentions, target.indices.papers])
    return time.perf_counter() - started


class _CpuClock:
    """CPU seconds of this process (the sink, or the bulk client) and of the servers."""

    def __init__(self) -> None:
        self.servers = {name: psutil.Process(pid) for name, pid in common.server_pids().items()}

    def read(self) -> dict[str, float]:
        used = {"client": time.process_time()}
        for name, process in self.servers.items():
            times = process.cpu_times()
            used[name] = times.user + times.system
        return used


def _rates(
    posts: int,
    operations: int,
    seconds: float,
    cpu_before: dict[str, float],
    cpu_after: dict[str, float],
) -> dict[str, Any]:
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_before}
    return {
        "operations": operations,
        "seconds": round(seconds, 3),
        # This process's CPU (the sink's, or the bulk client's) in the timed span.
        "client_cpu_us_per_operation": round(cpu["client"] / operations * 1e6, 2),
        # Cores busy on average: this process, Elasticsearch and Kafka (2 on this machine).
        "cores_busy": {name: round(value / seconds, 2) for name, value in cpu.items()},
        "posts_per_second": round(posts / seconds, 1),
        "operations_per_second": round(operations / seconds, 1),
    }


def elasticsearch_alone(source_namespace: str, posts: int, records: list[Any]) -> dict[str, Any]:
    """Write the sink's operations of `source_namespace`'s `records` again, timed alone."""
    source = SinkSettings(namespace=source_namespace)
    # Built as the run's sink built them (its topics), then pointed at fresh indices.
    sink = ElasticsearchSink(source)
    target, renamed = _fresh_target(source, sink.es)
    try:
        size = source.sink_batch_size
        batches = [
            sink.build_operations(records[start : start + size])
            for start in range(0, len(records), size)
        ]
        for batch in batches:
            _redirect(batch, renamed)
        operations = sum(len(batch) for batch in batches)
        clock = _CpuClock()
        with _heap_frozen():
            started, cpu_before = time.perf_counter(), clock.read()
            for batch in batches:
                sink.write(batch)
            cpu_after = clock.read()
        seconds = time.perf_counter() - started + _refresh_seconds(sink.es, target)
        return {"records": len(records), "batches": len(batches)} | _rates(
            posts, operations, seconds, cpu_before, cpu_after
        )
    finally:
        common.delete_namespace(target.namespace)


class _RedirectedSink(ElasticsearchSink):
    """The sink, writing into other indices, noting when its first and last batch ran."""

    def __init__(self, settings: SinkSettings, renamed: dict[str, str]) -> None:
        super().__init__(settings)
        self.renamed = renamed
        self.first: float | None = None
        self.last = 0.0
        self.clock = _CpuClock()
        self.cpu_first: dict[str, float] = {}
        self.cpu_last: dict[str, float] = {}
        self.records = 0
        self.operations = 0

    def build_operations(self, records: Any) -> list[tuple[dict, Any]]:
        operations = super().build_operations(records)
        _redirect(operations, self.renamed)
        self.operations += len(operations)
        return operations

    def prepare_batch(self, records: list[Any]) -> Callable[[], None]:
        if self.first is None:
            self.first, self.cpu_first = time.perf_counter(), self.clock.read()
        send = super().prepare_batch(records)

        def timed_send() -> None:
            send()
            self.records += len(records)
            self.last, self.cpu_last = time.perf_counter(), self.clock.read()

        return timed_send


def sink_alone(source_namespace: str, posts: int, expected_records: int) -> dict[str, Any]:
    """The sink on the run's pre-filled mentions and counts topics, in a fresh consumer
    group, into fresh indices; timed from its first batch to its last write + refresh."""
    source = SinkSettings(
        namespace=source_namespace, sink_group_id=f"sink-alone-{uuid.uuid4().hex[:8]}"
    )
    probe = ElasticsearchSink(source)
    target, renamed = _fresh_target(source, probe.es)
    try:
        sink = _RedirectedSink(source, renamed)
        with _heap_frozen():
            sink.run(idle_exit_seconds=5.0)
        if sink.first is None or sink.records != expected_records:
            raise RuntimeError(
                f"the sink alone consumed {sink.records} records, not {expected_records}"
            )
        seconds = sink.last - sink.first + _refresh_seconds(sink.es, target)
        return {"records": sink.records, "batches": sink.stats.batches} | _rates(
            posts, sink.operations, seconds, sink.cpu_first, sink.cpu_last
        )
    finally:
        common.delete_namespace(target.namespace)


def compare_stages(source_namespace: str, posts: int, repeats: int) -> dict[str, Any]:
    """Elasticsearch alone and the sink alone, `repeats` times each on the run's records
    (in pairs, which one first alternating); every pair's ratio (sink / Elasticsearch)
    and their median."""
    source = SinkSettings(namespace=source_namespace)
    records = read_back([source.topics.mentions, source.topics.counts])
    runs: list[dict[str, Any]] = []
    for repeat in range(repeats):
        # Which goes first alternates: Elasticsearch gets faster as it warms up.
        stages = ["elasticsearch", "sink"] if repeat % 2 == 0 else ["sink", "elasticsearch"]
        for stage in stages:
            if stage == "elasticsearch":
                alone = elasticsearch_alone(source_namespace, posts, records)
                print(f"  Elasticsearch alone ({repeat + 1}/{repeats}): {alone}")
            else:
                sink = sink_alone(source_namespace, posts, len(records))
                print(f"  sink alone ({repeat + 1}/{repeats}): {sink}")
        ratio = round(sink["posts_per_second"] / alone["posts_per_second"], 3)
        runs.append({"elasticsearch_alone": alone, "sink_alone": sink, "ratio": ratio})

    def summary(stage: str) -> dict[str, float]:
        rates = [run[stage]["posts_per_second"] for run in runs]
        return {"min": min(rates), "median": statistics.median(rates), "max": max(rates)}

    return {
        "repeats": runs,
        "elasticsearch_alone_posts_per_second": summary("elasticsearch_alone"),
        "sink_alone_posts_per_second": summary("sink_alone"),
        "ratio_sink_vs_elasticsearch": {
            "each": [run["ratio"] for run in runs],
            "median": statistics.median(run["ratio"] for run in runs),
        },
    }
