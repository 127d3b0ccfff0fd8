"""Envelopes: many raw posts in one Kafka record, so the worker pays Faust's per-record
cost (~65 µs here) once per ~100 posts instead of once per post.

An envelope is NDJSON: the posts' raw lines joined by `\\n` (a raw line never holds one;
JSON escapes it). A record is an envelope when it carries the header
`ENVELOPE_HEADER: ENVELOPE_NDJSON`; a record without it is one post, as the producers
write `posts.raw` today, so both can share a topic. Every post of an envelope must be
keyed to the envelope's partition (murmur2 of the post's key, as Kafka's default
partitioner places single posts): the worker's in-place ledger step and the
co-partitioned tables rely on it. A bad post inside an envelope is dead-lettered alone
(its 1-based line in the envelope is noted); the rest of the envelope counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ENVELOPE_HEADER = "trending-envelope"
ENVELOPE_NDJSON = b"ndjson"
#: Well under Kafka's default 1 MB record limit (a single larger post goes alone).
MAX_ENVELOPE_BYTES = 256 * 1024
MAX_ENVELOPE_POSTS = 100

Headers = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None


def is_envelope(headers: Headers) -> bool:
    """Whether a record with these Kafka headers is an envelope."""
    if not headers:
        return False
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return any(key == ENVELOPE_HEADER and value == ENVELOPE_NDJSON for key, value in pairs)


def open_envelope(value: bytes) -> list[bytes]:
    """The raw posts of an envelope, in order (blank lines skipped)."""
    return [line for line in value.split(b"\n") if line.strip()]


def seal(lines: Iterable[bytes]) -> bytes:
    """An envelope of `lines` (each one raw post without a newline)."""
    return b"\n".join(lines)


@dataclass
class _Pending:
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    since: float = 0.0  # when its first line came (the caller's clock)


class EnvelopeBuffer:
    """Collects raw posts per partition into envelopes of at most `max_posts` posts and
    `max_bytes` bytes; the caller sends what `add` returns and, every so often, what
    `due(now)` returns (the linger) and finally `drain()`."""

    def __init__(
        self,
        max_posts: int = MAX_ENVELOPE_POSTS,
        max_bytes: int = MAX_ENVELOPE_BYTES,
        linger_seconds: float = 0.05,
    ) -> None:
        self.max_posts, self.max_bytes, self.linger_seconds = max_posts, max_bytes, linger_seconds
        self._pending: dict[int, _Pending] = {}

    def add(self, partition: int, line: bytes, now: float = 0.0) -> list[tuple[int, bytes]]:
        """Add one post; return the envelopes that are full (to send now)."""
        ready = []
        pending = self._pending.get(partition)
        if pending is not None and pending.size + len(line) + 1 > self.max_bytes:
            ready.append((partition, seal(self._pending.pop(partition).lines)))
            pending = None
        if pending is None:
            pending = self._pending[partition] = _Pending(since=now)
        pending.lines.append(line)
        pending.size += len(line) + 1
        if len(pending.lines) >= self.max_posts or pending.size >= self.max_bytes:
            ready.append((partition, seal(self._pending.pop(partition).lines)))
        return ready

    def due(self, now: float) -> list[tuple[int, bytes]]:
        """Envelopes whose first post waited `linger_seconds` or more."""
        late = [
            p for p, pending in self._pending.items() if now - pending.since >= self.linger_seconds
        ]
        return [(p, seal(self._pending.pop(p).lines)) for p in late]

    def drain(self) -> Iterator[tuple[int, bytes]]:
        """Every envelope still pending."""
        pending, self._pending = self._pending, {}
        for partition, envelope in pending.items():
            yield partition, seal(envelope.lines)


def envelopes(
    lines: Iterable[bytes], partition_of: Callable[[bytes], int], **limits: Any
) -> Iterator[tuple[int, bytes]]:
    """(partition, envelope) for `lines` in order, each line on `partition_of(line)`
    (for the stream: murmur2 of the post's key, as Kafka places single posts)."""
    buffer = EnvelopeBuffer(**limits)
    for line in lines:
        yield from buffer.add(partition_of(line), line)
    yield from buffer.drain()
