"""`DirectTable` on the real Kafka: changelog records go in record batches per partition,
each key's record on its partition in the format Faust recovers from, in write order
across flushes, and batches that fill up are split without losing a record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import faust
import pytest
from kafka import KafkaConsumer, TopicPartition

from streams.direct_table import DirectTable
from streams.partitioner import key_partition
from streams.record_batches import RecordBatches
from trending_arxiv.kafka import ensure_topics
from trending_arxiv.settings import CommonSettings

pytestmark = pytest.mark.integration

PARTITIONS = 4  # a namespace's topics have 4 partitions


@pytest.fixture
def topic(stack_endpoints: tuple[str, str], namespace: str) -> str:
    settings = CommonSettings(kafka_bootstrap_servers=stack_endpoints[0], namespace=namespace)
    ensure_topics(settings)
    return settings.topics.alerts  # any topic of the namespace, ours alone


def _read_all(
    kafka: str, topic: str, json_keys: bool = True
) -> dict[int, list[tuple[str, object]]]:
    """Every record of `topic` per partition, in offset order: (key, value), the value
    JSON-decoded (the key too, as changelog keys are)."""
    consumer = KafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    ends = consumer.end_offsets(parts)
    found: dict[int, list[tuple[str, object]]] = {p: [] for p in range(PARTITIONS)}
    while any(consumer.position(tp) < ends[tp] for tp in parts):
        for tp, records in consumer.poll(timeout_ms=1000).items():
            for record in records:
                value = None if record.value is None else json.loads(record.value)
                key = json.loads(record.key) if json_keys else record.key.decode()
                found[tp.partition].append((key, value))
    consumer.close()
    return found


def _flush_twice(kafka: str, topic: str, namespace: str) -> Iterator[dict[str, object]]:
    """Write 3,000 keys, flush; change and delete some, flush by (keys, partition)."""

    async def run() -> list[dict[str, object]]:
        app = faust.App(
            f"{namespace}-direct",
            broker=f"kafka://{kafka}",
            producer_compression_type="zstd",
            producer_linger=0.02,
            producer_max_batch_size=4096,  # a few dozen records: many batches a flush
            producer_acks=-1,
        )
        await app.producer.start()
        try:
            direct = DirectTable(app.Table("t", default=None, partitions=PARTITIONS), app.producer)
            direct.topic = topic
            for number in range(3000):
                direct[f"key-{number}"] = {"n": number, "pad": "x" * (number % 50)}
            first = dict(direct.store)
            acks = await direct.flush(lambda key: key_partition(key, PARTITIONS))
            await asyncio.gather(*acks)
            # Changes taken per event, as the ledger's: sent per partition given.
            for number in range(0, 3000, 3):
                direct[f"key-{number}"] = {"n": -number}
            for number in range(1, 3000, 7):
                del direct[f"key-{number}"]
            changed = direct.take_changed()
            by_partition: dict[int, set[str]] = {}
            for key in changed:
                by_partition.setdefault(key_partition(key, PARTITIONS), set()).add(key)
            acks = await direct.flush_keys(list((keys, p) for p, keys in by_partition.items()))
            await asyncio.gather(*acks)
            assert len(acks) > 2 * PARTITIONS  # the small batch size split each partition's
            return [first, dict(direct.store)]
        finally:
            await app.producer.stop()

    yield from asyncio.run(run())


def test_changelog_batches_land_on_each_keys_partition_in_write_order(
    stack_endpoints: tuple[str, str], namespace: str, topic: str
) -> None:
    kafka = stack_endpoints[0]
    first, final = _flush_twice(kafka, topic, namespace)
    found = _read_all(kafka, topic)
    assert sum(len(records) for records in found.values()) == 3000 + 1000 + 429 - 143
    latest: dict[str, object] = {}
    for partition, records in found.items():
        for key, value in records:
            assert key_partition(key, PARTITIONS) == partition
            latest[key] = value
        # The first flush's records (every value of the second differs) all come before
        # the second's on every partition.
        of_first = [value == first[key] for key, value in records]
        assert of_first == sorted(of_first, reverse=True), partition
    # What Faust recovers (the last record of each key): the table as it is now, deleted
    # keys as null.
    assert {key: value for key, value in latest.items() if value is not None} == final
    assert sum(1 for value in latest.values() if value is None) == 3000 - len(final)


def test_keyed_records_land_where_a_send_without_partition_puts_them(
    stack_endpoints: tuple[str, str], namespace: str, topic: str
) -> None:
    """Count updates go in batches from the counting agent and one by one from the
    refresh timer: every record of a key must share one partition, in order."""
    kafka = stack_endpoints[0]

    async def run() -> None:
        app = faust.App(f"{namespace}-keyed", broker=f"kafka://{kafka}", producer_acks=-1)
        await app.producer.start()
        try:
            batches = RecordBatches(app.producer)
            for number in range(200):
                await batches.add_keyed(topic, f"2402.{number:05d}".encode(), b'{"n": 1}')
            acks = await batches.send()
            acks += [
                await app.producer.send(
                    topic, f"2402.{n:05d}".encode(), b'{"n": 2}', None, None, None
                )
                for n in range(200)
            ]
            await asyncio.gather(*acks)
        finally:
            await app.producer.stop()

    asyncio.run(run())
    values_of: dict[str, list[tuple[int, object]]] = {}
    for partition, records in _read_all(kafka, topic, json_keys=False).items():
        for key, value in records:
            values_of.setdefault(key, []).append((partition, value))
    assert len(values_of) == 200
    for key, seen in values_of.items():
        assert [value for _, value in seen] == [{"n": 1}, {"n": 2}], key
        assert len({partition for partition, _ in seen}) == 1, key
