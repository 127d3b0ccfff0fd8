"""Kafka's default partitioner hash, compiled with the counting core: the same values as
Kafka's Java client and kafka-python, compiled or run as Python."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from trending_arxiv.core.murmur import murmur2
from trending_arxiv.kafka import partition_of, partition_of_once


# `org.apache.kafka.common.utils.UtilsTest.testMurmur2` (signed ints there).
@pytest.mark.parametrize(
    ("key", "java"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_the_values_of_kafkas_java_client(key: bytes, java: int) -> None:
    assert murmur2(key) == java % 2**32


@given(st.binary(max_size=300))
def test_the_values_of_kafka_python_on_any_bytes(key: bytes) -> None:
    assert murmur2(key) == kafka_python_murmur2(key)


@given(st.text(max_size=80), st.integers(min_value=1, max_value=64))
def test_a_key_lands_where_kafkas_default_partitioner_puts_it(text: str, partitions: int) -> None:
    key = text.encode("utf-8", "surrogatepass")
    expected = (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions
    assert partition_of(key, partitions) == partition_of_once(key, partitions) == expected
