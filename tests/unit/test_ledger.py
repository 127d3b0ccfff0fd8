"""Dedupe, repost joins and deletes in the pure ledger (no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from trending_arxiv.ledger import Ledger, join_key, needs_join, routed_post
from trending_arxiv.posts import NormalizedPost

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def post(
    post_id: str,
    ids: tuple[str, ...] = (),
    kind: str = "post",
    ref: str | None = None,
    author: str = "alice",
    minutes: int = 0,
    source: str = "bluesky",
) -> NormalizedPost:
    return NormalizedPost(
        post_id=post_id,
        source=source,
        kind=kind,
        author_id=author,
        author_handle=author,
        created_at=T0 + timedelta(minutes=minutes),
        text="t",
        links=(),
        arxiv_ids=ids,
        ref_post_id=ref,
    )


class Harness:
    """Feeds records through a ledger, following its re-routes like the stream does."""

    def __init__(self, wait: float = 3600.0) -> None:
        self.store: dict[str, Any] = {}
        self.ledger = Ledger(self.store, wait)
        self.live: dict[str, set[str]] = {}
        self.duplicates = 0
        self.expired = 0

    def send(self, item: NormalizedPost, now_minutes: int = 0) -> None:
        queue = [routed_post(item)]
        while queue:
            result = self.ledger.apply(queue.pop(0), T0 + timedelta(minutes=now_minutes))
            self.duplicates += result.duplicates
            self.expired += result.expired_reposts
            queue.extend(r for _, r in result.reroutes)
            for mention in result.mentions:
                posts = self.live.setdefault(mention.arxiv_id, set())
                if mention.op == "add":
                    posts.add(mention.post_id)
                else:
                    posts.discard(mention.post_id)

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.live.items() if v}


def test_join_key_routes_reposts_to_their_subject() -> None:
    repost = post("at://b/app.bsky.feed.repost/1", kind="repost", ref="at://a/app.bsky.feed.post/1")
    assert needs_join(repost)
    assert join_key(repost) == "at://a/app.bsky.feed.post/1"
    original = post("at://a/app.bsky.feed.post/1", ids=("2401.00001",))
    assert join_key(original) == original.post_id
    x_retweet = post("9", ids=("2401.00001",), kind="repost", ref="8", source="x")
    assert not needs_join(x_retweet)
    assert join_key(x_retweet) == "9"


def test_redelivered_post_counts_once_but_is_resent() -> None:
    h = Harness()
    h.send(post("p1", ("2401.00001", "2401.00002")))
    h.send(post("p1", ("2401.00001", "2401.00002")))
    assert h.counts() == {"2401.00001": 1, "2401.00002": 1}
    assert h.duplicates == 1


def test_repost_after_subject_is_credited_with_subject_papers() -> None:
    h = Harness()
    h.send(post("s", ("2401.00001",)))
    h.send(post("r", kind="repost", ref="s", author="bob"))
    assert h.counts() == {"2401.00001": 2}


def test_repost_before_subject_is_credited_when_subject_arrives() -> None:
    h = Harness()
    h.send(post("r", kind="repost", ref="s", author="bob"))
    assert h.counts() == {}
    h.send(post("s", ("2401.00001",)), now_minutes=5)
    assert h.counts() == {"2401.00001": 2}


def test_repost_whose_subject_lags_behind_stream_time_is_still_credited() -> None:
    h = Harness(wait=60.0)
    h.send(post("r", kind="repost", ref="s"), now_minutes=0)
    h.send(post("s", ("2401.00001",)), now_minutes=10)
    assert h.counts() == {"2401.00001": 2}


def test_repost_read_after_its_subjects_delete_counts_as_in_order() -> None:
    in_order, reordered = Harness(), Harness()
    subject = post("s", ("2401.00001",))
    repost = post("r", kind="repost", ref="s", author="bob")
    delete = post("s", kind="delete")
    for item in (subject, repost, delete):
        in_order.send(item)
    for item in (subject, delete, repost):
        reordered.send(item)
    assert in_order.counts() == reordered.counts() == {"2401.00001": 1}


def test_delete_withdraws_post_and_its_redelivery_stays_deleted() -> None:
    h = Harness()
    h.send(post("s", ("2401.00001",)))
    h.send(post("s", kind="delete"))
    assert h.counts() == {}
    h.send(post("s", ("2401.00001",)))
    assert h.counts() == {}


def test_delete_of_a_credited_repost_withdraws_it() -> None:
    h = Harness()
    h.send(post("s", ("2401.00001",)))
    h.send(post("r", kind="repost", ref="s", author="bob"))
    h.send(post("r", kind="delete"))
    assert h.counts() == {"2401.00001": 1}
    h.send(post("r", kind="repost", ref="s", author="bob"))  # redelivered repost
    assert h.counts() == {"2401.00001": 1}


def test_redelivered_repost_counts_once() -> None:
    h = Harness()
    h.send(post("r", kind="repost", ref="s", author="bob"))
    h.send(post("r", kind="repost", ref="s", author="bob"))
    h.send(post("s", ("2401.00001",)))
    h.send(post("r", kind="repost", ref="s", author="bob"))
    assert h.counts() == {"2401.00001": 2}


def test_expire_pending_drops_only_stale_reposts() -> None:
    h = Harness(wait=60.0)
    h.send(post("r1", kind="repost", ref="s1"), now_minutes=0)
    h.send(post("r2", kind="repost", ref="s2"), now_minutes=5)
    assert h.ledger.expire_pending(T0 + timedelta(minutes=5, seconds=30)) == 1
    h.send(post("s2", ("2401.00002",)), now_minutes=5)
    assert h.counts() == {"2401.00002": 2}


def test_expire_pending_sweeps_only_owned_subjects() -> None:
    h = Harness(wait=60.0)
    h.send(post("r1", kind="repost", ref="s1"), now_minutes=0)
    h.send(post("r2", kind="repost", ref="s2"), now_minutes=0)
    later = T0 + timedelta(minutes=10)
    assert h.ledger.expire_pending(later, owns_subject=lambda subject: subject == "s1") == 1
    h.send(post("s2", ("2401.00002",)), now_minutes=10)  # r2 was not ours to expire
    h.send(post("s1", ("2401.00001",)), now_minutes=10)  # r1 expired: not credited
    assert h.counts() == {"2401.00001": 1, "2401.00002": 2}
