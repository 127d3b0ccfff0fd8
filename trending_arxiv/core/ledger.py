"""Dedupe, repost joins and deletes, as a pure state machine over a key-value store.

The stream routes every normalised post to the partition of its *join key*:
- a post with its own papers (or an X retweet whose original came in the payload): its id;
- a repost that names only its subject (Bluesky): the subject's id, so it meets the subject;
- a delete: the id of the deleted record.
Everything the ledger needs about a key is stored under that key (in the same
partition), so the Faust table that backs the store stays co-partitioned and two
workers can split the work.

When a repost is credited, the ledger sends a small `credit` record back to the
routing topic keyed by the repost's own id, so a later delete of the repost (which
names only the repost) finds the papers it must withdraw.

What the ledger remembers is bounded: stored entries keep no post text (a redelivered
post brings its own; removals need none), only reposts waiting for their subject keep
theirs; and `forget_before` drops what was stored longer ago than the dedupe retention
(`dedupe_retention_days`), so a post redelivered after that counts as new. A stored
entry is one compact JSON text (`pack_entry`): the ledger holds every post of the retention.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import orjson

from trending_arxiv.core.json_bytes import kept_json
from trending_arxiv.core.models import Mention, parse_utc, to_utc_iso
from trending_arxiv.core.posts import NormalizedPost

POST_PREFIX = "post:"
PENDING_PREFIX = "pending:"
TOMBSTONE_PREFIX = "deleted:"
# Marks, in the subject's partition, a repost already credited (dedupe of redeliveries).
CREDITED_PREFIX = "credited:"


def needs_join(post: NormalizedPost) -> bool:
    """A repost whose papers are not in its own payload must meet its subject."""
    return post.kind == "repost" and not post.arxiv_ids and post.ref_post_id is not None


def join_key(post: NormalizedPost) -> str:
    """The key a normalised post is routed by (see the module docstring)."""
    if needs_join(post):
        assert post.ref_post_id is not None
        return post.ref_post_id
    return post.post_id


def routed_post(post: NormalizedPost) -> dict[str, Any]:
    """The value sent to the routing topic for a parsed post."""
    return {"type": "post", "post": _post_entry(post, post.arxiv_ids)}


@dataclass
class LedgerResult:
    """What one routed record caused: mentions to emit, records to re-route, counters."""

    mentions: list[Mention] = field(default_factory=list)
    reroutes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    duplicates: int = 0
    pending: int = 0
    expired_reposts: int = 0
    deletes: int = 0


def _post_entry(post: NormalizedPost, arxiv_ids: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {
        "id": post.post_id,
        "ids": list(arxiv_ids),
        "src": post.source,
        "kind": post.kind,
        "aid": post.author_id,
        "ah": post.author_handle,
        "t": to_utc_iso(post.created_at) if post.created_at else None,
        "text": post.text[:2000],
        "ref": post.ref_post_id,
    }


def _remembered(entry: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What is stored of an entry: no text (the largest part), and when it was stored."""
    kept = {k: v for k, v in entry.items() if k not in ("text", "_seen")}
    kept["at"] = now.timestamp()
    return kept


# A stored post, credit or tombstone is kept as the JSON text of these fields, in this
# order, and its id is its key's suffix: one value of ~100 bytes instead of a dict of
# nine keys (~300 bytes a post with its key instead of ~810, measured on the 1M bench
# corpus). The changelog holds that text as a JSON string, which Faust recovers into a
# str (read the same way).
_PACKED_FIELDS = ("at", "ids", "src", "kind", "aid", "ah", "t", "ref")
# An entry whose mentions became true after its own time also keeps when ("k", ISO),
# packed after those only where it is set: a tombstone its delete's time, a credited
# repost its later subject's. The other entries stay as long as they were.
_KNOWN = "k"
_ALL_FIELDS = (*_PACKED_FIELDS, _KNOWN)


def pack_entry(entry: dict[str, Any]) -> bytes:
    """The stored form of a post, credit or tombstone entry (`unpack_entry` reverses it).

    Bytes, not str: 16 bytes less a value in memory (`stored` says why)."""
    packed = [entry.get(name) for name in _PACKED_FIELDS]
    if entry.get(_KNOWN) is not None:
        packed.append(entry[_KNOWN])
    return kept_json(packed)


def unpack_entry(key: str, stored: Any) -> dict[str, Any] | None:
    """The entry stored under `key` (packed as bytes, or as text when recovered from the
    changelog, or a dict stored by an older version)."""
    if stored is None or isinstance(stored, dict):
        return stored
    values = orjson.loads(stored)
    if len(values) not in (len(_PACKED_FIELDS), len(_ALL_FIELDS)):
        raise ValueError(f"a stored ledger entry of {len(values)} fields")
    entry = dict(zip(_ALL_FIELDS, values, strict=False))
    entry["id"] = key[key.index(":") + 1 :]  # every prefix ends at its first colon
    return entry


def holder_key(key: str, entry: Any) -> str | None:
    """The join key whose partition holds ledger `key` (its changelog partition).

    Entries sit under the record that wrote them: a post, delete or waiting list under
    its own id; a credited repost's marker under its subject, the `ref` of its entry.
    """
    for prefix in (POST_PREFIX, TOMBSTONE_PREFIX, PENDING_PREFIX):
        if key.startswith(prefix):
            return key[len(prefix) :]
    if key.startswith(CREDITED_PREFIX):
        return entry.get("ref") if isinstance(entry, dict) else None
    return None


def _stored_at(entry: Any) -> float | None:
    """When an entry was stored (stream time); entries of older versions: post or delete time."""
    if not isinstance(entry, dict):
        return None
    for name in ("at", "deleted_at"):
        if isinstance(entry.get(name), int | float):
            return float(entry[name])
    if entry.get("t"):
        return parse_utc(entry["t"]).timestamp()
    return None


def _wait_start(entry: dict[str, Any], now: datetime, wall_now: float, wait: float) -> float:
    """When a repost starts waiting for its subject (stream time, epoch s).

    Its own event time when that is later than stream time: stream time lags behind a
    repost read ahead of a lagging partition, and its subject is older than the
    repost, so the wait runs from the repost, not from the lag. A repost dated in the
    future (a bad clock) waits from one wait past the wall clock at most.
    """
    started = now.timestamp()
    if entry.get("t"):
        latest = max(started, wall_now) + wait
        started = max(started, min(parse_utc(entry["t"]).timestamp(), latest))
    return started


def _event_time(entry: dict[str, Any], fallback: datetime) -> datetime:
    """An entry's own event time ("t"), or `fallback` for an entry without one."""
    return parse_utc(entry["t"]) if entry.get("t") else fallback


def _known_or_none(entry: dict[str, Any]) -> datetime | None:
    """When an entry's mentions became true ("k"), if it keeps one: a tombstone its
    delete's time, a credited repost its later subject's."""
    return parse_utc(entry[_KNOWN]) if entry.get(_KNOWN) else None


def _known_time(entry: dict[str, Any], fallback: datetime) -> datetime:
    """`_known_or_none`, else `fallback` (a tombstone written before deletes kept
    their time: stream time now)."""
    known = _known_or_none(entry)
    return fallback if known is None else known


def _entry_to_post(entry: dict[str, Any]) -> NormalizedPost:
    return NormalizedPost(
        post_id=entry["id"],
        source=entry["src"],
        kind=entry["kind"],
        author_id=entry.get("aid"),
        author_handle=entry.get("ah"),
        created_at=parse_utc(entry["t"]) if entry.get("t") else None,
        text=entry.get("text") or "",
        links=(),
        arxiv_ids=tuple(entry.get("ids") or ()),
        ref_post_id=entry.get("ref"),
    )


def _mentions(
    entry: dict[str, Any], op: str, fallback_time: datetime, known: datetime | None = None
) -> list[Mention]:
    """The entry's mentions; `known`: when they became true in event time, if later
    than the post itself (a removal's delete, a repost's later subject)."""
    created = parse_utc(entry["t"]) if entry.get("t") else fallback_time
    known_at: Any = known if known is not None and known > created else msgspec.UNSET
    return [
        Mention(
            post_id=entry["id"],
            arxiv_id=arxiv_id,
            created_at=created,
            source=entry["src"],
            kind=entry["kind"],
            author_id=entry.get("aid"),
            author_handle=entry.get("ah"),
            text=entry.get("text") or "",
            ref_post_id=entry.get("ref"),
            op=op,  # type: ignore[arg-type]
            known_at=known_at,
        )
        for arxiv_id in entry.get("ids") or ()
    ]


class Ledger:
    """Applies routed records to a store; see the module docstring."""

    def __init__(
        self,
        store: MutableMapping[str, Any],
        repost_wait_seconds: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.repost_wait_seconds = repost_wait_seconds
        self.wall_clock = wall_clock  # only bounds the wait of future-dated reposts

    def _read(self, key: str) -> dict[str, Any] | None:
        """The post, credit or tombstone entry under `key` (not a waiting list)."""
        return unpack_entry(key, self.store.get(key))

    def _write(self, key: str, entry: dict[str, Any]) -> None:
        self.store[key] = pack_entry(entry)

    def apply(self, record: dict[str, Any], stream_time: datetime) -> LedgerResult:
        """Apply one routed record (`post` or `credit`) at the given stream time."""
        result = LedgerResult()
        entry = record["post"]
        if record["type"] == "credit":
            self._credit(entry, stream_time, result)
        elif entry["kind"] == "delete":
            self._delete(entry["id"], stream_time, result, _event_time(entry, stream_time))
        elif entry["kind"] == "repost" and not entry["ids"] and entry.get("ref"):
            self._repost(entry, stream_time, result)
        else:
            self._original(entry, stream_time, result)
        return result

    def _original(self, entry: dict[str, Any], now: datetime, result: LedgerResult) -> None:
        key = POST_PREFIX + entry["id"]
        tombstone = self._read(TOMBSTONE_PREFIX + entry["id"])
        if tombstone is not None and tombstone.get("ids") is None:
            self._deleted_first(entry, tombstone, now, result)
            return
        if self._replay_duplicate(entry, now, result):
            return
        self._write(key, _remembered(entry, now))
        result.mentions.extend(_mentions(entry, "add", now))
        self._credit_waiting(entry, now, result)

    def _credit_waiting(self, subject: dict[str, Any], now: datetime, result: LedgerResult) -> None:
        """Credit the reposts waiting for `subject`.

        A waiting repost is credited however long it waited: stream time is global, so
        a lagging partition can deliver an older subject "late". Expiry is only the
        memory bound of `expire_pending`."""
        waiting = self.store.pop(PENDING_PREFIX + subject["id"], None)
        subject_time = _event_time(subject, now)
        for repost in waiting or ():
            self._credit_repost(repost, subject["ids"], now, result, subject_time)

    def _deleted_first(
        self, entry: dict[str, Any], tombstone: dict[str, Any], now: datetime, result: LedgerResult
    ) -> None:
        """A post read after its own delete: it was still posted, and withdrawn at the
        delete. Both mentions, and its reposts credited, so the history is the same
        whichever of the two is read first."""
        deleted = _known_time(tombstone, now)
        kept = {**_remembered(entry, now), "at": tombstone["at"], _KNOWN: to_utc_iso(deleted)}
        self._write(TOMBSTONE_PREFIX + entry["id"], kept)
        result.deletes += 1
        result.mentions.extend(_mentions(entry, "add", now))
        result.mentions.extend(_mentions(entry, "remove", now, deleted))
        self._credit_waiting(entry, now, result)

    def _repost(self, entry: dict[str, Any], now: datetime, result: LedgerResult) -> None:
        subject_id = entry["ref"]
        # Only the keys of the subject's partition, where the repost is read: what the
        # repost's own partition holds (its credit, its delete) is not seen here when
        # the two partitions differ, so it must not count when they are the same.
        if self._replay_duplicate(entry, now, result, own_partition=False):
            return
        # A deleted subject still credits reposts made before its delete, so the result
        # does not depend on whether the repost or the delete is read first.
        subject = self._read(POST_PREFIX + subject_id) or self._read(TOMBSTONE_PREFIX + subject_id)
        if subject is not None and subject.get("ids") is not None:
            subject_time = _event_time(subject, now)
            self._credit_repost(entry, subject.get("ids") or [], now, result, subject_time)
            return
        pending = list(self.store.get(PENDING_PREFIX + subject_id) or [])
        if any(waiting["id"] == entry["id"] for waiting in pending):
            result.duplicates += 1
            return
        started = _wait_start(entry, now, self.wall_clock(), self.repost_wait_seconds)
        pending.append({**entry, "_seen": started})
        self.store[PENDING_PREFIX + subject_id] = pending
        result.pending += 1

    def _credit_repost(
        self,
        repost: dict[str, Any],
        arxiv_ids: list[str],
        now: datetime,
        result: LedgerResult,
        subject_time: datetime,
    ) -> None:
        """Credit a repost with its subject's papers, as of the later of the two."""
        credited = {k: v for k, v in repost.items() if k != "_seen"}
        credited["ids"] = list(arxiv_ids)
        if subject_time > _event_time(credited, subject_time):
            credited[_KNOWN] = to_utc_iso(subject_time)  # a subject dated after its repost
        remembered = _remembered(credited, now)
        self._write(CREDITED_PREFIX + repost["id"], remembered)
        result.mentions.extend(_mentions(credited, "add", now, _known_or_none(credited)))
        result.reroutes.append((repost["id"], {"type": "credit", "post": remembered}))

    def _credit(self, entry: dict[str, Any], now: datetime, result: LedgerResult) -> None:
        """The repost's own partition learns which papers it was credited with."""
        key = POST_PREFIX + entry["id"]
        tombstone = self._read(TOMBSTONE_PREFIX + entry["id"])
        if tombstone is not None:
            # Deleted before its subject arrived: withdraw what was just credited, as of
            # the delete (or the credit, if the subject came after the delete).
            withdrawn = _known_time(tombstone, now)
            credited = _known_or_none(entry)
            if credited is not None and credited > withdrawn:
                withdrawn = credited
            result.mentions.extend(_mentions(entry, "remove", now, withdrawn))
            return
        if key in self.store:
            result.duplicates += 1
        self._write(key, _remembered(entry, now))

    def _delete(self, post_id: str, now: datetime, result: LedgerResult, deleted: datetime) -> None:
        """Withdraw a post as of `deleted`, its delete's event time."""
        tombstone = TOMBSTONE_PREFIX + post_id
        previous = self._read(tombstone)
        if previous is not None:
            result.duplicates += 1
            if previous.get("ids"):
                result.mentions.extend(
                    _mentions(previous, "remove", now, _known_time(previous, now))
                )
            return
        key = POST_PREFIX + post_id
        entry = unpack_entry(key, self.store.pop(key, None))
        withdrawn = deleted if entry is None else max(deleted, _known_time(entry, deleted))
        kept = {**(entry or {"id": post_id}), "at": now.timestamp(), _KNOWN: to_utc_iso(withdrawn)}
        self._write(tombstone, kept)
        result.deletes += 1
        if entry is not None:
            result.mentions.extend(_mentions(entry, "remove", now, withdrawn))

    def _replay_duplicate(
        self,
        incoming: dict[str, Any],
        now: datetime,
        result: LedgerResult,
        own_partition: bool = True,
    ) -> bool:
        """Handle a post seen before; return True if it was.

        The mentions it caused are sent again: downstream counting is idempotent per
        post, and re-sending covers a crash between the table write and the send
        (Faust commits after both, so the redelivered record lands here). Their text is
        the redelivered record's own (the same post; stored entries keep none).
        """
        post_id = incoming["id"]
        for prefix in (POST_PREFIX, CREDITED_PREFIX) if own_partition else (CREDITED_PREFIX,):
            entry = self._read(prefix + post_id)
            if entry is not None:
                result.duplicates += 1
                resent = {**entry, "text": incoming.get("text")}
                result.mentions.extend(_mentions(resent, "add", now, _known_or_none(entry)))
                if prefix == CREDITED_PREFIX:
                    result.reroutes.append((post_id, {"type": "credit", "post": entry}))
                return True
        tombstone = self._read(TOMBSTONE_PREFIX + post_id) if own_partition else None
        if tombstone is not None:
            result.duplicates += 1
            if tombstone.get("ids"):
                known = _known_time(tombstone, now)
                result.mentions.extend(_mentions(tombstone, "remove", now, known))
            return True
        return False

    def expire_pending(
        self, now: datetime, owns_subject: Callable[[str], bool] | None = None
    ) -> int:
        """Drop reposts that waited longer than allowed for their subject; return how many.

        `owns_subject` limits the sweep to the subjects whose keys this process owns
        (a worker holds other partitions' keys as standby copies).
        """
        moment = now.timestamp()
        return self.expire_pending_at(
            lambda subject: moment if owns_subject is None or owns_subject(subject) else None
        )

    def expire_pending_at(self, stream_time_of: Callable[[str], float | None]) -> int:
        """`expire_pending` with each subject's own stream time (epoch s): the stream
        time of its partition, or None to leave its reposts waiting."""
        expired = 0
        for key in [k for k in list(self.store.keys()) if k.startswith(PENDING_PREFIX)]:
            now = stream_time_of(key[len(PENDING_PREFIX) :])
            if now is None:
                continue
            waiting = self.store.get(key) or []
            keep = [r for r in waiting if now - r["_seen"] <= self.repost_wait_seconds]
            expired += len(waiting) - len(keep)
            if keep:
                if len(keep) != len(waiting):
                    self.store[key] = keep
            else:
                del self.store[key]
        return expired

    def forget_before(
        self, cutoff: datetime, owns: Callable[[str], bool] | None = None
    ) -> dict[str, str]:
        """Drop dedupe entries stored before `cutoff` (stream time); return, for each key
        dropped, the join key whose partition held it (for its changelog delete).

        Waiting reposts are left to `expire_pending`. `owns(join_key)` limits the sweep
        to the partitions this process owns, as there.
        """
        limit = cutoff.timestamp()
        dropped: dict[str, str] = {}
        for key in list(self.store.keys()):
            if key.startswith(PENDING_PREFIX):
                continue
            entry = self._read(key)
            stored = _stored_at(entry)
            holder = holder_key(key, entry)
            if stored is None or stored >= limit or holder is None:
                continue
            if owns is not None and not owns(holder):
                continue
            del self.store[key]
            dropped[key] = holder
        return dropped


def entry_post(entry: dict[str, Any]) -> NormalizedPost:
    """Rebuild a normalised post from a routed entry (for tests and tools)."""
    return _entry_to_post(entry)
