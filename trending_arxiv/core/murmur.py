"""Kafka's default partitioner hash (murmur2, as `org.apache.kafka.common.utils.Utils`),
compiled with the counting core (`compiled.COMPILED_MODULES`).

kafka-python's pure-Python `murmur2` costs ~8 µs a post id (every post is hashed for its
ledger partition), each step on arbitrary-precision ints. Here the arithmetic is on
`i64`, which mypyc keeps in machine words, and every intermediate stays below 2**49 (a
32-bit product is taken as two 16-bit halves of the multiplier), so it never overflows;
run as Python, `i64` is `int` and the answers are the same.
"""

from __future__ import annotations

import struct
from typing import Final

from mypy_extensions import i64

_MASK: Final = 0xFFFFFFFF
_SEED: Final = 0x9747B28C
# The mixing constant m = 0x5BD1E995, split for `_times_m`.
_M_HIGH: Final = 0x5BD1
_M_LOW: Final = 0xE995


def _times_m(value: i64) -> i64:
    """(value * m) mod 2**32 for 0 <= value < 2**32."""
    return (value * _M_LOW + (((value * _M_HIGH) & 0xFFFF) << 16)) & _MASK


def murmur2(data: bytes) -> int:
    """The unsigned 32-bit murmur2 of `data` (kafka-python's `murmur2`, the same value)."""
    length = len(data)
    h: i64 = _SEED ^ length
    whole = length - length % 4
    # The 4-byte little-endian words, unpacked in C at once.
    for word in struct.unpack_from(f"<{whole // 4}I", data):
        k = _times_m(word)
        k ^= k >> 24
        k = _times_m(k)
        h = _times_m(h) ^ k
    extra = length - whole
    if extra >= 3:
        h ^= data[whole + 2] << 16
    if extra >= 2:
        h ^= data[whole + 1] << 8
    if extra >= 1:
        h = _times_m(h ^ data[whole])
    h ^= h >> 13
    h = _times_m(h)
    h ^= h >> 15
    return int(h)
