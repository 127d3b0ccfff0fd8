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

ENVELOPE_HEADER = "trending-envelope"
ENVELOPE_NDJSON = b"ndjson"
#: Well under Kafka's default 1 MB record limit (a single larger post goes alone).
MAX_ENVELOPE_BYTES = 256 * 1024
MAX_ENVELOPE_POSTS = 100
#: The headers of an envelope record, as the Kafka clients take them.
ENVELOPE_HEADERS = [(ENVELOPE_HEADER, ENVELOPE_NDJSON)]

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


def envelopes(
    lines: Iterable[bytes],
    partition_of: Callable[[bytes], int],
    max_posts: int = MAX_ENVELOPE_POSTS,
    max_bytes: int = MAX_ENVELOPE_BYTES,
) -> Iterator[tuple[int, bytes]]:
    """(partition, envelope) for `lines` in order, each line on `partition_of(line)`
    (for the stream: murmur2 of the post's key, as Kafka places single posts), at most
    `max_posts` posts and `max_bytes` bytes an envelope (a larger post travels alone).
    For a file at hand; a live producer also needs the linger and per-post
    acknowledgements of `producers.envelopes.EnvelopeBatcher`."""
    pending: dict[int, tuple[list[bytes], int]] = {}
    for line in lines:
        partition = partition_of(line)
        group, size = pending.pop(partition, ([], 0))
        if group and size + len(line) + 1 > max_bytes:
            yield partition, seal(group)
            group, size = [], 0
        group.append(line)
        size += len(line) + 1
        if len(group) >= max_posts or size >= max_bytes:
            yield partition, seal(group)
        else:
            pending[partition] = (group, size)
    for partition, (group, _) in pending.items():
        yield partition, seal(group)
