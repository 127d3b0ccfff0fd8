"""Which partitions Faust will never commit past (faust-streaming/faust#596): the
watchdog re-reads them from their committed offset instead of restarting the worker."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from faust.types import TP

from streams.watchdog import head_gaps

RAW, ROUTED, BATCHES = TP("raw", 0), TP("routed", 2), TP("batches", 1)


def consumer(
    acked: dict[TP, list[int]], committed: dict[TP, int | None], gaps: dict[TP, object]
) -> SimpleNamespace:
    return SimpleNamespace(
        _acked=defaultdict(list, acked),
        _committed_offset=defaultdict(lambda: None, committed),
        _gap=defaultdict(list, gaps),
    )


def test_records_missing_right_after_the_commit_make_a_head_gap() -> None:
    stuck = consumer(
        acked={ROUTED: [47, 46, 48], RAW: [9, 10], BATCHES: [7]},
        committed={ROUTED: 43, RAW: 9, BATCHES: 6},
        gaps={},
    )
    assert head_gaps(stuck) == {ROUTED: 43}


def test_one_missing_offset_a_known_gap_or_no_commit_yet_is_no_head_gap() -> None:
    # Faust commits over a single missing head offset, over a known (compacted) gap,
    # and anything when the partition has no committed offset yet.
    assert head_gaps(consumer({RAW: [10, 11]}, {RAW: 9}, {})) == {}
    assert head_gaps(consumer({RAW: [20, 21]}, {RAW: 9}, {RAW: [(10, 20)]})) == {}
    assert head_gaps(consumer({RAW: [20, 21]}, {}, {})) == {}
    assert head_gaps(consumer({RAW: []}, {RAW: 9}, {})) == {}


def test_a_consumer_without_those_internals_has_no_head_gaps() -> None:
    assert head_gaps(object()) == {}
