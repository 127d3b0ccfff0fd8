"""Benchmark: CPU a changelog record, record batches (`DirectTable`) vs a send per record.

The worker writes ~2 changelog records a post (a ledger entry, an account entry per
mention, a paper summary per paper and batch). This bench writes the same records to a
real Kafka topic (8 partitions, zstd, the worker's producer settings) both ways, in
alternating repeats, and waits until every record is acknowledged:

* ``per_record``: one `producer.send` a record through Faust's aiokafka driver (what
  `DirectTable` did before: a future and a queue entry a record);
* ``batches``: `DirectTable.flush` (one aiokafka `BatchBuilder` a partition, handed to
  the producer whole).

CPU is the process's (every thread: the producer's sender and compression included).

    python -m bench.bench_changelog [--records N] [--repeats R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import faust
import orjson
from kafka.admin import KafkaAdminClient, NewTopic

from bench import common
from streams.direct_table import DirectTable
from streams.partitioner import key_partition

PARTITIONS = 8


def _records(n: int) -> dict[str, str]:
    """Account-entry-like records: `arXiv id account` -> a packed entry (~60 bytes)."""
    return {
        f"2402.{i % 40_000:05d} account{i}": f'{{"p{i}":[1700000000.0,"x",1,1000000000]}}'
        for i in range(n)
    }


async def _measure(n: int, repeats: int) -> dict[str, list[float]]:
    namespace = common.fresh_namespace("bench-changelog")
    topic = f"{namespace}-changelog"
    admin = KafkaAdminClient(bootstrap_servers=common.KAFKA, client_id="bench-changelog")
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    app = faust.App(
        namespace,
        broker=f"kafka://{common.KAFKA}",
        producer_compression_type="zstd",
        producer_linger=0.02,
        producer_max_batch_size=1_048_576,
        producer_acks=-1,
    )
    producer = app.producer
    await producer.start()
    table = app.Table("bench", default=None, partitions=PARTITIONS)
    direct = DirectTable(table, producer)
    direct.topic = topic
    records = _records(n)
    cpu: dict[str, list[float]] = {"per_record": [], "batches": []}
    try:
        for _ in range(repeats):
            for mode in cpu:
                for key, value in records.items():
                    direct[key] = value
                started = time.process_time()
                if mode == "batches":
                    acks = await direct.flush(lambda key: key_partition(key, PARTITIONS))
                else:
                    direct.take_changed()
                    acks = [
                        await producer.send(
                            topic,
                            orjson.dumps(key),
                            orjson.dumps(value),
                            key_partition(key, PARTITIONS),
                            None,
                            None,
                        )
                        for key, value in records.items()
                    ]
                await asyncio.gather(*acks)
                cpu[mode].append(1e6 * (time.process_time() - started) / n)
    finally:
        await producer.stop()
        common.delete_namespace(namespace, es=False)
    return cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="changelog")
    args = parser.parse_args(argv)
    cpu = asyncio.run(_measure(args.records, args.repeats))
    medians = {mode: statistics.median(values) for mode, values in cpu.items()}
    print(f"{'way':<12} {'µs CPU a record (median)':>26}  runs")
    for mode, values in cpu.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"{mode:<12} {medians[mode]:>26.2f}  {runs}")
    ratio = medians["per_record"] / medians["batches"]
    print(f"batches: {ratio:.1f}x less CPU a record")
    result: dict[str, Any] = {
        "records": args.records,
        "partitions": PARTITIONS,
        "us_cpu_per_record": cpu,
        "median": medians,
        "per_record_over_batches": round(ratio, 2),
        "machine": common.machine_info(),
    }
    out = common.RESULTS_DIR / f"{args.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out.relative_to(common.ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
