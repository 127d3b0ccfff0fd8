"""Stream time for alerts, carried along the mentions topic with the mentions.

Each ledger partition `q` has two writers of mentions: the parse agent (the posts of
raw partition `q` it applies to the ledger in place) and the ledger agent (the routed
records of routed partition `q`). Each worker sends, on every mentions partition and
after the mentions it vouches for (one producer, in order), a watermark record: for each
ledger partition it owns, what each of the two writers promises of the mentions still
to come, as epoch seconds: none has an earlier moment (`Mention.moment`).

- The parse agent promises its raw partition's `Watermark.vouched`: raw posts come in
  event-time order, and what a post causes is never older than the post (a repost
  credited when its subject comes is as of the subject at the earliest; a removal is as
  of its delete).
- The ledger agent promises the least promise of the progress reports it has read on
  its routed partition (`ExpiryClock.vouched`): every raw partition's, as each sends its
  routed records before the report that covers them.

The counting agent keeps the latest promise of every writer per mentions partition
(`AlertClock`); the least of them, over every ledger partition, is the partition's
watermark: its papers' alerts are decided up to there (`core.alert_log`). One case
breaks the promise: a repost deleted before its subject came is withdrawn by a credit
the ledger re-routes to the repost's own partition, which no report vouches for; its
removal may then come after the watermark passed it, and is late.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from trending_arxiv.core.envelope import Headers

WATERMARK_TYPE = "watermark"
WATERMARK_HEADER = "trending-watermark"
#: The headers of a watermark record on the mentions topic (readers of mentions skip it).
WATERMARK_HEADERS = [(WATERMARK_HEADER, b"1")]
_KINDS = ("in_place", "routed")


def is_watermark(headers: Headers) -> bool:
    """Whether a mentions-topic record with these Kafka headers is a watermark record."""
    if not headers:
        return False
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return any(key == WATERMARK_HEADER for key, _ in pairs)


def watermark_record(in_place: Mapping[int, float], routed: Mapping[int, float]) -> bytes:
    """The value of a watermark record: each writer's promise, by ledger partition."""
    return orjson.dumps({
        "type": WATERMARK_TYPE,
        "in_place": {str(q): promise for q, promise in sorted(in_place.items())},
        "routed": {str(q): promise for q, promise in sorted(routed.items())},
    })  # fmt: skip


def read_watermark_record(value: bytes) -> dict[str, dict[int, float]]:
    """The promises of a watermark record, by writer kind; ValueError if malformed."""
    record: Any = orjson.loads(value)
    if not isinstance(record, dict) or record.get("type") != WATERMARK_TYPE:
        raise ValueError("not a watermark record")
    promises: dict[str, dict[int, float]] = {}
    for kind in _KINDS:
        given = record.get(kind)
        if not isinstance(given, dict):
            raise ValueError(f"watermark record without an {kind!r} object")
        promises[kind] = {}
        for partition, promise in given.items():
            if not isinstance(promise, int | float) or isinstance(promise, bool):
                raise ValueError(f"promise of {kind} {partition!r} is not a number: {promise!r}")
            promises[kind][int(partition)] = float(promise)
    return promises


class AlertClock:
    """The watermark of each mentions partition this worker counts (see the module)."""

    def __init__(self, ledger_partitions: int) -> None:
        self.ledger_partitions = ledger_partitions
        # mentions partition -> (writer kind, ledger partition) -> its latest promise
        self._promises: dict[int, dict[tuple[str, int], float]] = {}

    def note(self, partition: int, promises: Mapping[str, Mapping[int, float]]) -> None:
        """A watermark record read on mentions partition `partition`.

        A promise never moves back: a new owner of a ledger partition that promises
        less (it re-reads from the last commit) re-sends mentions already counted."""
        kept = self._promises.setdefault(partition, {})
        for kind, by_partition in promises.items():
            for ledger, promise in by_partition.items():
                key = (kind, ledger)
                if promise > kept.get(key, float("-inf")):
                    kept[key] = promise

    def watermark(self, partition: int) -> int | None:
        """Mentions partition `partition`'s watermark (whole µs), or None until every
        writer of every ledger partition has promised something there."""
        kept = self._promises.get(partition, {})
        least: float | None = None
        for kind in _KINDS:
            for ledger in range(self.ledger_partitions):
                promise = kept.get((kind, ledger))
                if promise is None:
                    return None
                least = promise if least is None or promise < least else least
        # Truncated to the µs: a moment the watermark rounded up past is never decided early.
        return None if least is None else int(least * 1_000_000)

    def forget(self, partition: int) -> None:
        """A mentions partition this worker no longer counts (its promises go stale)."""
        self._promises.pop(partition, None)
