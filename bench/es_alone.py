"""Elasticsearch with nothing upstream: the sink's writes of an end-to-end run, again.

`bench_e2e --es-alone` reads back every record the sink consumed in its run (the
mentions and count-update topics), builds the sink's bulk operations from them in its
batch size before the clock, and times only their writes (`ElasticsearchSink.write`:
the sink's own bulk path, then a refresh) into fresh indices of another namespace. The
rate, in the run's posts per second, is what Elasticsearch on this machine allows the
pipeline with the producer, Kafka, the worker and the sink's reading all gone.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from bench import common
from sinks.elasticsearch_sink import ElasticsearchSink
from sinks.indices import ensure_indices
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


def elasticsearch_alone(source_namespace: str, posts: int) -> dict[str, Any]:
    """Write the sink's operations of `source_namespace`'s run again, timed alone."""
    source = SinkSettings(namespace=source_namespace)
    records = read_back([source.topics.mentions, source.topics.counts])
    namespace = common.fresh_namespace("es-alone")
    target = SinkSettings(namespace=namespace)
    # Built as the run's sink built them (its topics), then pointed at fresh indices.
    sink = ElasticsearchSink(source)
    renamed = {
        source.indices.mentions: target.indices.mentions,
        source.indices.papers: target.indices.papers,
    }
    try:
        ensure_indices(sink.es, target, target.sink_refresh_interval)
        size = source.sink_batch_size
        batches = [
            sink.build_operations(records[start : start + size])
            for start in range(0, len(records), size)
        ]
        for batch in batches:
            for action, _body in batch:
                meta = next(iter(action.values()))
                meta["_index"] = renamed.get(meta["_index"], meta["_index"])
        operations = sum(len(batch) for batch in batches)
        started = time.perf_counter()
        for batch in batches:
            sink.write(batch)
        sink.es.indices.refresh(index=[target.indices.mentions, target.indices.papers])
        seconds = time.perf_counter() - started
        return {
            "records": len(records),
            "operations": operations,
            "batches": len(batches),
            "seconds": round(seconds, 3),
            "posts_per_second": round(posts / seconds, 1),
            "operations_per_second": round(operations / seconds, 1),
        }
    finally:
        common.delete_namespace(namespace)
