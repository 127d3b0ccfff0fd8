"""The producers' envelope batching and the acknowledgement of envelopes (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from producers.checkpoint import AckTracker
from producers.envelopes import EnvelopeBatcher
from trending_arxiv.core.envelope import open_envelope
from trending_arxiv.kafka import partition_of

T0 = datetime(2026, 12, 5, tzinfo=UTC)


def test_partition_of_is_the_workers_partition_of_the_key() -> None:
    """The worker applies a post to its ledger in place when the record's partition is
    its key's; the producer must place envelopes exactly there."""
    from streams.direct_table import key_partition
    from streams.partitioner import post_key_partition

    for key in ("1", "at://did:plc:x/app.bsky.feed.post/3k", "https://m.social/@a/1", "é"):
        for partitions in (1, 3, 8):
            assert partition_of(key.encode(), partitions) == key_partition(key, partitions)
            # The worker's in-place check, which does not remember post ids.
            assert post_key_partition(key, partitions) == key_partition(key, partitions)


def test_envelopes_close_at_max_posts_and_keep_read_order() -> None:
    batcher = EnvelopeBatcher(max_posts=3, max_bytes=1024, linger_seconds=10)
    sent = []
    for seq in range(7):
        sent += batcher.add(seq % 2, "x", b"post-%d" % seq, seq, T0 + timedelta(seconds=seq), 0.0)
    assert [(e.partition, e.seqs) for e in sent] == [(0, [0, 2, 4]), (1, [1, 3, 5])]
    assert open_envelope(sent[0].value()) == [b"post-0", b"post-2", b"post-4"]
    assert sent[0].fetched_at == T0  # the oldest post's fetch time
    assert len(batcher) == 1
    assert [e.seqs for e in batcher.drain()] == [[6]] and len(batcher) == 0


def test_envelopes_never_exceed_max_bytes_and_sources_stay_apart() -> None:
    batcher = EnvelopeBatcher(max_posts=100, max_bytes=100, linger_seconds=10)
    sent = []
    for seq in range(10):
        sent += batcher.add(0, "bluesky" if seq % 2 else "x", b"a" * 30, seq, T0, 0.0)
    sent += batcher.drain()
    assert all(len(e.value()) <= 100 for e in sent)
    assert sorted(s for e in sent for s in e.seqs) == list(range(10))
    assert all({s % 2 for s in e.seqs} == {1 if e.source == "bluesky" else 0} for e in sent)


def test_linger_sends_only_envelopes_whose_first_post_waited() -> None:
    batcher = EnvelopeBatcher(max_posts=100, max_bytes=1024, linger_seconds=0.05)
    batcher.add(0, "x", b"early", 0, T0, now=1.00)
    batcher.add(1, "x", b"late", 1, T0, now=1.04)
    assert [e.seqs for e in batcher.due(1.06)] == [[0]]
    assert [e.seqs for e in batcher.due(1.10)] == [[1]]


def test_what_cannot_travel_in_an_envelope_goes_alone() -> None:
    batcher = EnvelopeBatcher(max_posts=100, max_bytes=1024, linger_seconds=0.05)
    assert batcher.fits(b'{"id": 1}')
    assert not batcher.fits(b'{\n  "id": 1\n}')  # a pretty-printed .json document
    assert not batcher.fits(b"   ")
    assert not batcher.fits(b"x" * 1024)


def test_checkpoint_waits_for_every_post_of_an_envelope() -> None:
    tracker = AckTracker()
    first = [tracker.register(("file", line)) for line in (1, 2, 3)]
    second = [tracker.register(("file", line)) for line in (4, 5)]
    tracker.ack_many(second)  # a later envelope acknowledged first
    assert tracker.committed() is None
    tracker.ack_many(first)
    assert tracker.committed() == ("file", 5) and tracker.pending() == 0
    third = [tracker.register(("file", 6)), tracker.register(("file", 7))]
    tracker.ack(third[1])
    assert tracker.committed() == ("file", 5)
