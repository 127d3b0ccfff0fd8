"""`catalog load`, pure parts: bulk bodies, chunking, which items to retry, the tally."""

from __future__ import annotations

import json
from typing import Any

import pytest

import sinks.catalog_loader as loader
from sinks.catalog import _author_name, _clean, _json_line
from sinks.catalog_loader import BulkChunk, LoadSummary, chunked, settle, tally


def ndjson(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.splitlines()]


def test_create_and_update_lines() -> None:
    chunk = BulkChunk("create")
    chunk.add("math/0211159", b'{"title":"A"}')
    chunk.add("2401.00001", b'{"title":"B"}')
    assert ndjson(chunk.lines(range(2))) == [
        {"create": {"_id": "math/0211159"}}, {"title": "A"},
        {"create": {"_id": "2401.00001"}}, {"title": "B"},
    ]  # fmt: skip
    update = BulkChunk("update")
    update.add("2401.00001", b'{"title":"B"}')
    action, body = ndjson(update.lines([0]))
    assert action == {"update": {"_id": "2401.00001", "retry_on_conflict": 3}}
    # Only metadata fields are sent: the counts of a known paper are not touched.
    assert body == {"doc": {"title": "B"}, "doc_as_upsert": True}


def test_chunks_are_cut_by_count_and_by_bytes() -> None:
    docs = [(f"2401.{i:05d}", b"x" * 100) for i in range(10)]
    assert [len(c.ids) for c in chunked(docs, "create", 4, 1 << 20)] == [4, 4, 2]
    by_bytes = list(chunked(docs, "create", 100, 300))
    assert [len(c.ids) for c in by_bytes] == [2, 2, 2, 2, 2]
    assert [i for c in by_bytes for i in c.ids] == [i for i, _ in docs]  # order kept


def test_first_chunks_ramp_up_to_the_chunk_size() -> None:
    docs = [(f"2401.{i:05d}", b"x") for i in range(40)]
    ramped = list(chunked(docs, "create", 8, 1 << 20, first_size=2))
    assert [len(c.ids) for c in ramped] == [2, 4, 8, 8, 8, 8, 2]
    assert [i for c in ramped for i in c.ids] == [i for i, _ in docs]
    assert all(c.size == sum(len(i) + 1 + 40 for i in c.ids) for c in ramped)


@pytest.mark.parametrize(
    "parts",
    [
        ["Balázs", "C.", ""],
        ["Evans", "Neal J.", "II"],
        [" van  der\nWaals ", "J.\tD.", " "],
        ["Solo"],
        ["Last", None, ""],
        [None, None],
        [],
    ],
)
def test_author_name_equals_cleaning_each_part(parts: list[Any]) -> None:
    ordered = parts[1:2] + parts[0:1] + parts[2:3]
    expected = " ".join(p for p in (_clean(x) for x in ordered) if p)
    assert _author_name(parts) == expected


def test_json_lines_orjson_first_then_the_lenient_parser() -> None:
    assert _json_line(b'{"id": "0704.0001"}') == {"id": "0704.0001"}
    assert _json_line(b'{"n": NaN}')["n"] != 0  # orjson refuses NaN; json reads it
    with pytest.raises(ValueError):
        _json_line(b"{broken")


def test_overloaded_items_are_sent_again_until_the_last_try() -> None:
    results: list[dict[str, Any]] = [{}] * 3
    items = [{"create": {"status": s}} for s in (201, 429, 409)]
    assert settle(results, [0, 1, 2], items, last=False) == [1]  # only the 429 again
    assert [r.get("status") for r in results] == [201, None, 409]
    chunk = BulkChunk("create")
    for i in range(3):
        chunk.add(f"2401.0000{i}", b"{}")
    assert ndjson(chunk.lines([1]))[0] == {"create": {"_id": "2401.00001"}}
    assert settle(results, [1], [{"create": {"status": 429}}], last=True) == []
    assert results[1] == {"status": 429}  # given up: it is reported, not dropped


def test_tally_counts_every_outcome() -> None:
    summary = LoadSummary(path="x")
    outcomes = [
        tally(summary, "create", "a", {"status": 201}),
        tally(summary, "create", "b", {"status": 409}),
        tally(summary, "create", "c", {"status": 400, "error": {"type": "bad"}}),
        tally(summary, "update", "d", {"status": 200, "result": "noop"}),
        tally(summary, "update", "e", {"status": 200, "result": "updated"}),
        tally(summary, "update", "f", {"status": 201, "result": "created"}),
    ]
    assert outcomes == ["created", "conflict", "rejected", "unchanged", "updated", "updated"]
    assert (summary.created, summary.unchanged, summary.updated) == (1, 1, 2)
    assert summary.rejected == 1 and "c" in summary.examples[0] and "bad" in summary.examples[0]


def test_conflicts_go_out_in_order_and_a_partial_chunk_waits() -> None:
    sent: list[BulkChunk] = []

    class Recorder:
        conflicts = [(f"2401.{i:05d}", b"{}") for i in range(5)]

        def submit(self, chunk: BulkChunk) -> None:
            sent.append(chunk)

    pipeline = Recorder()
    loader._submit_conflicts(pipeline, 2, 1 << 20, everything=False)  # type: ignore[arg-type]
    assert [c.ids for c in sent] == [["2401.00000", "2401.00001"], ["2401.00002", "2401.00003"]]
    assert pipeline.conflicts == [("2401.00004", b"{}")]
    loader._submit_conflicts(pipeline, 2, 1 << 20, everything=True)  # type: ignore[arg-type]
    assert sent[-1].op == "update" and sent[-1].ids == ["2401.00004"]
    assert pipeline.conflicts == []
