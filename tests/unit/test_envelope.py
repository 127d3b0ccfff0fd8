"""Envelope framing: limits, order, headers."""

from __future__ import annotations

from trending_arxiv.core.envelope import (
    ENVELOPE_HEADER,
    ENVELOPE_NDJSON,
    envelopes,
    is_envelope,
    open_envelope,
)


def test_envelopes_keep_each_partitions_order_within_the_limits() -> None:
    lines = [b'{"n": %d}' % n for n in range(1000)]
    sent = list(envelopes(lines, lambda line: int(line[6:-1]) % 3, max_posts=7, max_bytes=60))
    assert all(len(open_envelope(value)) <= 7 and len(value) <= 60 for _, value in sent)
    for partition in range(3):
        got = [line for p, value in sent if p == partition for line in open_envelope(value)]
        assert got == [line for line in lines if int(line[6:-1]) % 3 == partition]


def test_a_post_larger_than_the_limit_travels_alone() -> None:
    lines = [b"a" * 10, b"b" * 500, b"c"]
    sent = list(envelopes(lines, lambda line: 0 if line[:1] != b"c" else 1, max_bytes=100))
    assert sent == [(0, b"a" * 10), (0, b"b" * 500), (1, b"c")]


def test_only_records_with_the_header_are_envelopes() -> None:
    assert is_envelope([(ENVELOPE_HEADER, ENVELOPE_NDJSON)])
    assert is_envelope({ENVELOPE_HEADER: ENVELOPE_NDJSON})
    assert not is_envelope(None) and not is_envelope([]) and not is_envelope([("x", b"y")])
