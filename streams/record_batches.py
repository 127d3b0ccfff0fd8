"""Records for Kafka in record batches, one a (topic, partition), handed to the producer
whole: ~6 µs of CPU a record, compression and acknowledgement included, where a send a
record costs ~22 through Faust's driver (`bench/bench_changelog.py`)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, cast

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.types import ProducerT

from trending_arxiv.kafka import partition_of


class RecordBatches:
    """One flush's records: `add` appends each to its partition's open batch (a full
    batch is sent at once and a new one started), `send` sends the rest.

    Order: aiokafka keeps a partition's batches (and single sends) in the order they were
    handed over, so records keep the order of `add` per partition, after whatever was
    sent there before. A second batch for a partition waits until the producer has taken
    the one before it. Faust flushes the producer before it commits offsets, so the
    batches are durable before the records that caused them count as processed."""

    def __init__(self, producer: ProducerT) -> None:
        # Faust's driver keeps its aiokafka producer private (faust-streaming is pinned,
        # 0.15.3); it is the one Faust flushes before a commit.
        self.producer = cast(AIOKafkaProducer, cast(Any, producer)._ensure_producer())
        self.open: dict[tuple[str, int], BatchBuilder] = {}
        self.acks: list[Awaitable[Any]] = []
        self.partition_counts: dict[str, int] = {}  # per topic, asked once a flush

    async def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        """Append a record for `partition` of `topic`."""
        batch = self.open.get((topic, partition))
        if batch is None:
            batch = self.open[topic, partition] = self.producer.create_batch()
        if batch.append(timestamp=None, key=key, value=value) is None:
            # Full: sent as it is, and the record starts the next one (an empty batch
            # takes a record of any size).
            await self._send_batch(topic, partition, batch)
            batch = self.open[topic, partition] = self.producer.create_batch()
            batch.append(timestamp=None, key=key, value=value)

    async def add_keyed(self, topic: str, key: bytes, value: bytes | None) -> None:
        """Append a record where Kafka's default partitioner would send it (murmur2 of
        the key over the topic's partitions, as `producer.send` without a partition)."""
        count = self.partition_counts.get(topic)
        if count is None:
            count = self.partition_counts[topic] = len(await self.producer.partitions_for(topic))
        await self.add(topic, partition_of(key, count), key, value)

    async def send(self) -> list[Awaitable[Any]]:
        """Send the open batches; the acknowledgements of every batch of this flush
        (awaiting them waits until its records are durable in Kafka)."""
        for (topic, partition), batch in self.open.items():
            await self._send_batch(topic, partition, batch)
        self.open.clear()
        acks, self.acks = self.acks, []
        return acks

    async def _send_batch(self, topic: str, partition: int, batch: BatchBuilder) -> None:
        self.acks.append(await self.producer.send_batch(batch, topic, partition=partition))
