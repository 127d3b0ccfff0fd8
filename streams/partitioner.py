"""The worker's partitioning: Kafka's default (murmur2 of the key, hashes remembered in
`trending_arxiv.kafka.key_hash`) for the keys it places and for its producer's sends."""

from __future__ import annotations

import random
from collections.abc import Sequence

from trending_arxiv.kafka import key_hash, partition_of, partition_of_once


def key_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives a record keyed `key`."""
    return partition_of(key.encode(), partitions)


def post_key_partition(key: str, partitions: int) -> int:
    """`key_partition` of a post's join key, not remembered (seen about once each)."""
    return partition_of_once(key.encode(), partitions)


class CachedPartitioner:
    """aiokafka's `DefaultPartitioner` (Faust's `producer_partitioner`), hashes cached."""

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[key_hash(key) % len(all_partitions)]
