"""Open envelopes of the producers: raw posts grouped per target partition (and source)
until ~100 posts, 256 KB or the linger, then sealed into one Kafka record
(`trending_arxiv.core.envelope`: NDJSON, header `trending-envelope: ndjson`).

Each post keeps the sequence number its `AckTracker` gave it, so the envelope's
acknowledgement acknowledges every one of its posts and checkpoints move only past posts
Kafka holds. Grouping by source too keeps the envelope's `source` header exact (versions
of one post share key and source, so they stay in order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from trending_arxiv.core.envelope import MAX_ENVELOPE_BYTES, MAX_ENVELOPE_POSTS, seal


@dataclass(slots=True)
class OpenEnvelope:
    """Posts waiting for one partition, from one source, in read order."""

    partition: int
    source: str
    opened: float  # monotonic time of its first post (the linger runs from it)
    fetched_at: datetime  # when its first (oldest) post was fetched
    lines: list[bytes] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    size: int = 0

    def value(self) -> bytes:
        return seal(self.lines)


class EnvelopeBatcher:
    """Buckets per (partition, source); `add` returns the envelopes that are full, `due`
    the ones whose first post waited the linger, `drain` all (for a flush)."""

    def __init__(
        self,
        max_posts: int = MAX_ENVELOPE_POSTS,
        max_bytes: int = MAX_ENVELOPE_BYTES,
        linger_seconds: float = 0.05,
    ) -> None:
        self.max_posts, self.max_bytes, self.linger_seconds = max_posts, max_bytes, linger_seconds
        self._open: dict[tuple[int, str], OpenEnvelope] = {}

    def fits(self, line: bytes) -> bool:
        """Whether `line` may travel in an envelope: one non-blank line that fits in one.
        (A pretty-printed `.json` document or a huge post goes alone, as a plain record.)"""
        return len(line) < self.max_bytes and b"\n" not in line and bool(line.strip())

    def add(
        self, partition: int, source: str, line: bytes, seq: int, fetched_at: datetime, now: float
    ) -> list[OpenEnvelope]:
        """Add one post (that `fits`); the envelopes to send now, oldest first."""
        ready = []
        bucket = (partition, source)
        envelope = self._open.get(bucket)
        if envelope is not None and envelope.size + len(line) > self.max_bytes:
            ready.append(self._open.pop(bucket))
            envelope = None
        if envelope is None:
            envelope = self._open[bucket] = OpenEnvelope(partition, source, now, fetched_at)
        envelope.lines.append(line)
        envelope.seqs.append(seq)
        envelope.size += len(line) + 1  # its newline
        if len(envelope.lines) >= self.max_posts or envelope.size >= self.max_bytes:
            ready.append(self._open.pop(bucket))
        return ready

    def take(self, partition: int, source: str) -> OpenEnvelope | None:
        """The open envelope of this bucket, if any (sent before a lone post of it)."""
        return self._open.pop((partition, source), None)

    def due(self, now: float) -> list[OpenEnvelope]:
        """Envelopes whose first post waited `linger_seconds` or more."""
        late = [b for b, e in self._open.items() if now - e.opened >= self.linger_seconds]
        return [self._open.pop(bucket) for bucket in late]

    def drain(self) -> list[OpenEnvelope]:
        """Every open envelope."""
        envelopes, self._open = list(self._open.values()), {}
        return envelopes

    def __len__(self) -> int:
        """Posts waiting in open envelopes."""
        return sum(len(envelope.lines) for envelope in self._open.values())
