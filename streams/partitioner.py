"""Kafka's default partitioning (murmur2 of the key), with the hashes remembered.

The pure-Python murmur2 of the Kafka clients costs a few µs a key, paid for every
record the worker sends and every key it places itself. Most keys repeat (arXiv IDs,
join keys of reposts), so their hashes are kept in a bounded cache.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from kafka.partitioner.default import murmur2


@lru_cache(maxsize=1 << 17)
def _key_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def key_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives a record keyed `key`."""
    return _key_hash(key.encode()) % partitions


class CachedPartitioner:
    """aiokafka's `DefaultPartitioner` (Faust's `producer_partitioner`), hashes cached."""

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[_key_hash(key) % len(all_partitions)]
