"""Partition skew: a repost read before its subject, while other partitions run ahead.

Raw posts are keyed by their own id, so a Bluesky repost and the post it reposts sit in
different raw partitions; the worker may read the repost first and park it until the
subject comes. The wait is measured in *stream time*. When it was the newest event time
seen on any partition and the subject's partition lagged (a replay at full speed, a
partition behind a burst of huge lines, a restarted broker), stream time moved on by
more than the wait although the subject was only seconds late in processing time, and
the repost was dropped: a lost count the in-order reference never has (seen in the 10k
fuzz-corpus run, `ledger.expired_reposts: 1`). Stream time is now a watermark
(`trending_arxiv.core.clock.Watermark`): the lagging partition holds it back. For
expiry, the worker takes it from every raw partition's progress, whichever worker
reads it, and leaves out only the partitions read to their end
(`trending_arxiv.core.progress.ExpiryClock`; two real workers in
`tests/integration/test_expiry_across_workers.py`).
These drive the pure ledger as the worker does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from trending_arxiv.core.clock import Watermark
from trending_arxiv.core.ledger import Ledger, routed_post
from trending_arxiv.core.posts import parse_line
from trending_arxiv.core.progress import ExpiryClock, RawProgress
from trending_arxiv.core.simulate import simulate

T0 = datetime(2026, 3, 1, 15, 58, 59, tzinfo=UTC)
SUBJECT = "at://did:plc:alice/app.bsky.feed.post/a1"


def _jetstream(did: str, collection: str, rkey: str, at: datetime, record: dict) -> bytes:
    return json.dumps(
        {
            "did": did,
            "time_us": int(at.timestamp() * 1e6),
            "kind": "commit",
            "commit": {
                "rev": rkey,
                "operation": "create",
                "collection": collection,
                "rkey": rkey,
                "cid": "c",
                "record": record,
            },
        }
    ).encode()


def _routed(line: bytes) -> dict[str, Any]:
    (post,) = parse_line(line)
    record: dict[str, Any] = json.loads(json.dumps(routed_post(post)))
    return record


def test_repost_whose_subject_partition_lags_is_still_credited() -> None:
    subject = _routed(
        _jetstream(
            "did:plc:alice",
            "app.bsky.feed.post",
            "a1",
            T0,
            {"text": "new paper arXiv:1707.01234", "createdAt": T0.isoformat()},
        )
    )
    repost_at = T0 + timedelta(minutes=16)
    repost = _routed(
        _jetstream(
            "did:plc:bob",
            "app.bsky.feed.repost",
            "r1",
            repost_at,
            {"subject": {"uri": SUBJECT, "cid": "c"}, "createdAt": repost_at.isoformat()},
        )
    )
    ledger = Ledger({}, repost_wait_seconds=3600.0)  # the worker's default wait

    # The repost's partition is read first: it waits for its subject.
    parked = ledger.apply(repost, stream_time=repost_at)
    assert parked.pending == 1 and not parked.mentions
    # Other partitions run ahead (2 h of event time) before the subject's partition is
    # read; the subject itself is 16 minutes *older* than the repost.
    later = ledger.apply(subject, stream_time=repost_at + timedelta(hours=2))

    credited = [m for m in later.mentions if m.post_id.endswith("app.bsky.feed.repost/r1")]
    assert later.expired_reposts == 0, "the repost was dropped because of partition skew"
    assert [m.arxiv_id for m in credited] == ["1707.01234"]


def test_repost_read_after_its_subjects_delete_counts_as_in_order() -> None:
    """Post, repost, delete of the post, in that order (the reference credits the repost).

    The post and its delete share a raw partition (keyed by the post's URI); the repost
    is in another. If the repost's partition lags, the ledger reads post, delete, repost:
    the subject is gone and the repost waits forever, one count short of the reference.
    """
    at = T0
    post_line = _jetstream(
        "did:plc:alice",
        "app.bsky.feed.post",
        "a1",
        at,
        {"text": "arXiv:1707.01234", "createdAt": at.isoformat()},
    )
    repost_line = _jetstream(
        "did:plc:bob",
        "app.bsky.feed.repost",
        "r1",
        at + timedelta(minutes=5),
        {
            "subject": {"uri": SUBJECT, "cid": "c"},
            "createdAt": (at + timedelta(minutes=5)).isoformat(),
        },
    )
    delete_line = json.dumps(
        {
            "did": "did:plc:alice",
            "time_us": int((at + timedelta(minutes=10)).timestamp() * 1e6),
            "kind": "commit",
            "commit": {"operation": "delete", "collection": "app.bsky.feed.post", "rkey": "a1"},
        }
    ).encode()
    in_order = simulate([post_line, repost_line, delete_line])
    skewed = simulate([post_line, delete_line, repost_line])
    assert in_order.posts_by_paper == {"1707.01234": 1}  # the repost still counts
    assert skewed.posts_by_paper == in_order.posts_by_paper
    assert skewed.mention_ids == in_order.mention_ids


def _subject_and_repost() -> tuple[bytes, bytes, datetime]:
    """A post of a paper at T0 and a repost of it 16 minutes later (and that time)."""
    subject_line = _jetstream(
        "did:plc:alice", "app.bsky.feed.post", "a1", T0,
        {"text": "new paper arXiv:1707.01234", "createdAt": T0.isoformat()},
    )  # fmt: skip
    repost_at = T0 + timedelta(minutes=16)
    repost_line = _jetstream(
        "did:plc:bob", "app.bsky.feed.repost", "r1", repost_at,
        {"subject": {"uri": SUBJECT, "cid": "c"}, "createdAt": repost_at.isoformat()},
    )  # fmt: skip
    return subject_line, repost_line, repost_at


def test_a_lagging_partition_holds_the_repost_expiry_back() -> None:
    """The worker's sweep drops reposts that waited longer than the wait in *stream time*;
    with stream time a watermark (the minimum over partitions of each one's newest event),
    a lagging subject partition holds it back: the repost is still there when its
    subject comes, and the counts equal the in-order reference's."""
    subject_line, repost_line, repost_at = _subject_and_repost()
    ticks = iter(float(n) for n in range(100))
    watermark = Watermark(idle_after_seconds=60, monotonic=lambda: next(ticks))
    watermark.assign([0, 1, 2])
    ledger = Ledger({}, repost_wait_seconds=3600.0)
    watermark.observe(2, T0 - timedelta(minutes=1))  # the subject's partition, behind
    watermark.observe(0, repost_at)
    watermark.observe(1, repost_at)
    stream_time = watermark.current()
    assert stream_time is not None
    parked = ledger.apply(_routed(repost_line), stream_time)
    assert parked.pending == 1
    watermark.observe(1, repost_at + timedelta(hours=2))  # another partition runs ahead
    sweep_time = watermark.current()
    assert sweep_time == T0 - timedelta(minutes=1)
    assert ledger.expire_pending(sweep_time) == 0
    # The newest event anywhere, the old stream time, would have dropped it.
    newest = watermark.newest()
    assert newest is not None and Ledger(dict(ledger.store), 3600.0).expire_pending(newest) == 1
    watermark.observe(2, T0)
    credited = ledger.apply(_routed(subject_line), watermark.current() or T0)
    reference = simulate([subject_line, repost_line])
    assert {m.document_id for m in credited.mentions} == reference.mention_ids


def test_a_raw_partition_with_the_subject_unread_holds_the_expiry_clock_back() -> None:
    """The same skew as the worker's sweep sees it: raw partition 2 (the subject's) is
    read up to just before the subject while the others run two hours past the repost;
    its records still unread hold the expiry clock at its progress."""
    subject_line, repost_line, repost_at = _subject_and_repost()
    ledger = Ledger({}, repost_wait_seconds=3600.0)
    # Read with the subject's partition far behind: stream time hours before the repost.
    assert ledger.apply(_routed(repost_line), T0 - timedelta(hours=5)).pending == 1
    clock = ExpiryClock(monotonic=lambda: 0.0)
    ahead = (repost_at + timedelta(hours=2)).timestamp()
    clock.report(0, {
        0: RawProgress(500, ahead), 1: RawProgress(700, ahead),
        2: RawProgress(40, (T0 - timedelta(minutes=1)).timestamp()),
    })  # fmt: skip
    ends = {0: 500, 1: 700, 2: 41}  # the subject is raw partition 2's next record
    sweep_time = clock.stream_time(0, ends)
    assert sweep_time == (T0 - timedelta(minutes=1)).timestamp()
    assert ledger.expire_pending_at(lambda subject: sweep_time) == 0
    # Read to its end everywhere, the newest event time would have dropped it.
    assert Ledger(dict(ledger.store), 3600.0).expire_pending_at(lambda subject: ahead) == 1
    credited = ledger.apply(_routed(subject_line), T0)
    reference = simulate([subject_line, repost_line])
    assert {m.document_id for m in credited.mentions} == reference.mention_ids
