"""Dedupe, repost joins and deletes in the pure ledger (no broker)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from trending_arxiv.core.ledger import (
    CREDITED_PREFIX,
    PENDING_PREFIX,
    POST_PREFIX,
    TOMBSTONE_PREFIX,
    Ledger,
    holder_key,
    join_key,
    needs_join,
    pack_entry,
    routed_post,
    unpack_entry,
)
from trending_arxiv.core.posts import NormalizedPost

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
        text=f"text of {post_id}",
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
        self.texts: dict[str, str] = {}
        while queue:
            result = self.ledger.apply(queue.pop(0), T0 + timedelta(minutes=now_minutes))
            self.duplicates += result.duplicates
            self.expired += result.expired_reposts
            queue.extend(r for _, r in result.reroutes)
            for mention in result.mentions:
                self.texts[mention.post_id] = mention.text
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


# -- what the ledger remembers, and for how long -------------------------------------------
def test_stored_entries_keep_no_text_but_resent_mentions_have_it() -> None:
    h = Harness()
    h.send(post("s", ("2401.00001",)))
    h.send(post("r", kind="repost", ref="s", author="bob"))
    h.send(post("d", ("2401.00002",)))
    h.send(post("d", kind="delete"))
    assert all(b"text" not in entry for entry in h.store.values()), h.store
    h.send(post("s", ("2401.00001",)))  # redelivered: its mention again, with its text
    assert h.duplicates == 1 and h.texts == {"s": "text of s"}
    h.send(post("r", kind="repost", ref="s", author="bob"))
    assert h.texts == {"r": "text of r"}


def test_a_waiting_repost_keeps_its_text_until_credited() -> None:
    h = Harness()
    h.send(post("r", kind="repost", ref="s", author="bob"))
    assert h.store[PENDING_PREFIX + "s"][0]["text"] == "text of r"
    h.send(post("s", ("2401.00001",)))
    assert h.texts == {"s": "text of s", "r": "text of r"}


def test_forget_before_drops_old_dedupe_entries_with_their_holders() -> None:
    h = Harness()
    h.send(post("old", ("2401.00001",)), now_minutes=0)
    h.send(post("r", kind="repost", ref="old", author="bob"), now_minutes=0)
    h.send(post("gone", kind="delete"), now_minutes=0)
    h.send(post("waiting", kind="repost", ref="nobody"), now_minutes=0)
    h.send(post("new", ("2401.00002",)), now_minutes=120)
    dropped = h.ledger.forget_before(T0 + timedelta(minutes=60))
    assert dropped == {
        POST_PREFIX + "old": "old",
        CREDITED_PREFIX + "r": "old",  # held in the subject's partition
        POST_PREFIX + "r": "r",  # the credit the repost's own partition stored
        TOMBSTONE_PREFIX + "gone": "gone",
    }
    assert set(h.store) == {POST_PREFIX + "new", PENDING_PREFIX + "nobody"}
    # Past the retention a redelivered post is new again (the documented trade-off).
    h.send(post("old", ("2401.00001",)), now_minutes=130)
    assert h.duplicates == 0


def test_forget_before_sweeps_only_owned_holders() -> None:
    h = Harness()
    h.send(post("a", ("2401.00001",)))
    h.send(post("b", ("2401.00002",)))
    dropped = h.ledger.forget_before(T0 + timedelta(days=1), owns=lambda key: key == "a")
    assert dropped == {POST_PREFIX + "a": "a"} and POST_PREFIX + "b" in h.store


def test_entries_of_older_versions_are_aged_by_their_post_time() -> None:
    ledger = Ledger({POST_PREFIX + "x": {"id": "x", "ids": ["2401.00001"],
                                          "t": "2026-01-01T00:00:00Z"}}, 60.0)  # fmt: skip
    assert ledger.forget_before(T0 - timedelta(hours=1)) == {}
    assert ledger.forget_before(T0 + timedelta(hours=1)) == {POST_PREFIX + "x": "x"}


def test_stored_entries_are_compact_texts_that_unpack_to_what_was_stored() -> None:
    h = Harness()
    h.send(post("did:plc:a/post/1", ("2401.00001", "2401.00002"), source="bluesky"))
    h.send(post("gone", kind="delete"))
    stored = h.store[POST_PREFIX + "did:plc:a/post/1"]
    assert isinstance(stored, bytes) and b"text of" not in stored
    # The id (with its own colons) comes back from the key; the rest from the text.
    assert unpack_entry(POST_PREFIX + "did:plc:a/post/1", stored) == {
        "id": "did:plc:a/post/1", "ids": ["2401.00001", "2401.00002"], "src": "bluesky",
        "kind": "post", "aid": "alice", "ah": "alice", "t": "2026-01-01T00:00:00Z",
        "ref": None, "at": T0.timestamp(),
    }  # fmt: skip
    tombstone = unpack_entry(TOMBSTONE_PREFIX + "gone", h.store[TOMBSTONE_PREFIX + "gone"])
    assert tombstone is not None and tombstone["id"] == "gone" and tombstone["ids"] is None
    # A quarter or less of the dict it replaced (which Faust's store kept as such).
    entry = unpack_entry(POST_PREFIX + "did:plc:a/post/1", stored)
    assert entry is not None and pack_entry(entry) == stored
    assert sys.getsizeof(stored) * 3 < _deep_size(entry)
    # Recovered from the changelog, the same text is a str: it reads alike.
    assert unpack_entry(POST_PREFIX + "did:plc:a/post/1", stored.decode()) == entry


def _deep_size(value: Any) -> int:
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(_deep_size(k) + _deep_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sys.getsizeof(value) + sum(_deep_size(v) for v in value)
    return sys.getsizeof(value)


def test_entries_stored_as_dicts_by_older_versions_still_dedupe_and_withdraw() -> None:
    h = Harness()
    h.store[POST_PREFIX + "p"] = {"id": "p", "ids": ["2401.00001"], "src": "bluesky",
                                  "kind": "post", "aid": "alice", "ah": "alice",
                                  "t": "2026-01-01T00:00:00Z", "ref": None, "at": 0.0}  # fmt: skip
    h.live["2401.00001"] = {"p"}
    h.send(post("p", ("2401.00001",)))
    assert h.duplicates == 1
    h.send(post("p", kind="delete"))
    assert h.live["2401.00001"] == set()
    assert isinstance(h.store[TOMBSTONE_PREFIX + "p"], bytes)


def test_holder_key_of_every_prefix() -> None:
    assert holder_key(POST_PREFIX + "p", {}) == "p"
    assert holder_key(TOMBSTONE_PREFIX + "p", {}) == "p"
    assert holder_key(PENDING_PREFIX + "s", []) == "s"
    assert holder_key(CREDITED_PREFIX + "r", {"ref": "s"}) == "s"
    assert holder_key("other", {}) is None
