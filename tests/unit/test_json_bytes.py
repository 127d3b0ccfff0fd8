"""Kept JSON bytes (`core.json_bytes`): table values that do not pin orjson's buffers."""

from __future__ import annotations

import orjson
import psutil

from trending_arxiv.core.json_bytes import kept_json
from trending_arxiv.core.ledger import pack_entry, unpack_entry

KEPT = 50_000


def _entry(number: int) -> dict[str, object]:
    return {
        "at": 1740787230.24 + number, "ids": ["2504.00603"], "src": "bluesky",
        "kind": "post", "aid": f"did:plc:{number:024d}", "ah": None,
        "t": "2025-03-01T00:00:30.240000Z", "ref": None,
    }  # fmt: skip


def test_kept_values_do_not_pin_orjsons_buffers() -> None:
    """50k kept ledger entries take ~8 MB; orjson's own results would pin ~4 KB each
    (~200 MB: the 1M-post worker grew to 9 GB with them)."""
    process = psutil.Process()
    before = process.memory_info().rss
    kept = [pack_entry(_entry(number)) for number in range(KEPT)]
    grown = process.memory_info().rss - before
    assert grown < 60 * 2**20, f"{KEPT} packed entries took {grown / 2**20:.0f} MiB"
    assert all(type(value) is bytes for value in kept)
    key = "post:at://did:plc:a/app.bsky.feed.post/1"
    assert unpack_entry(key, kept[7]) == {**_entry(7), "id": key[len("post:") :]}


def test_kept_json_is_orjsons_text() -> None:
    value = {"a": [1, 2.5, None], "b": "c"}
    assert kept_json(value) == orjson.dumps(value)
