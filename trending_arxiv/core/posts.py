"""Normalise raw social posts (X v2/v1.1, Bluesky Jetstream, Mastodon) into one shape.

`parse_payload` takes any decoded payload and returns the posts in it;
`parse_line` decodes one JSON line first. Anything that is not a recognisable
payload raises `PostParseError` with a human reason, never another exception type.
Pure code: no I/O, no Kafka/Faust/Elasticsearch.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import msgspec

from trending_arxiv.core.ids import _id_from_url as _url_id  # cached; callers pass str only
from trending_arxiv.core.ids import _text_ids_into, arxiv_id_from_url, arxiv_ids_in_text

try:  # orjson is ~5x faster than the stdlib; the stdlib still explains bad input.
    import orjson

    _fast_loads: Any = orjson.loads
    _FastDecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - exercised only without orjson installed
    _fast_loads = json.loads
    _FastDecodeError = ValueError

__all__ = [
    "KINDS",
    "SOURCES",
    "NormalizedPost",
    "PostParseError",
    "parse_line",
    "parse_payload",
]

SOURCES = ("x", "bluesky", "mastodon")
KINDS = ("post", "reply", "quote", "repost", "delete")


class PostParseError(ValueError):
    """The input is not a post payload we understand; the message says why."""


@dataclass(frozen=True, slots=True)
class NormalizedPost:
    """One post, whatever network it came from."""

    post_id: str
    source: str
    kind: str
    author_id: str | None
    author_handle: str | None
    created_at: datetime | None
    text: str
    links: tuple[str, ...]
    arxiv_ids: tuple[str, ...]
    ref_post_id: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``created_at`` as ISO-8601 UTC with a ``Z``."""
        created = self.created_at
        return {
            "post_id": self.post_id,
            "source": self.source,
            "kind": self.kind,
            "author_id": self.author_id,
            "author_handle": self.author_handle,
            "created_at": None if created is None else _iso_z(created),
            "text": self.text,
            "links": list(self.links),
            "arxiv_ids": list(self.arxiv_ids),
            "ref_post_id": self.ref_post_id,
        }


def _iso_z(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------
# Small helpers shared by all networks
# ---------------------------------------------------------------------------------


def _papers(links: Iterable[str], texts: Iterable[str], extra: Iterable[str] = ()) -> set[str]:
    ids = set(extra)
    for url in links:
        ident = arxiv_id_from_url(url)
        if ident is not None:
            ids.add(ident)
    for text in texts:
        if text:
            ids.update(arxiv_ids_in_text(text))
    return ids


def _id_str(value: object, what: str, allow_int: bool = False) -> str:
    """An ID given as a non-empty string (or an int, as X payloads may do)."""
    if isinstance(value, str) and value:
        return value
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise PostParseError(f"{what} must be a non-empty string, got {_describe(value)}")


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _text(value: object, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise PostParseError(f"{what} must be a string, got {_describe(value)}")


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value!r}"[:80]


def _dict(value: object, what: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise PostParseError(f"{what} must be an object, got {_describe(value)}")


def _dicts(value: object) -> list[dict[str, Any]]:
    """The objects of an optional list field (absent/null means none)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PostParseError(f"expected an array, got {_describe(value)}")
    return [v for v in value if isinstance(v, dict)]


def _iso_time(value: object) -> datetime | None:
    """ISO-8601 timestamp as aware UTC; None when absent or unparsable."""
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    tz = dt.tzinfo
    if tz is UTC:  # the usual "...Z" form: nothing to convert
        return dt
    if tz is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# ---------------------------------------------------------------------------------
# X API v2
# ---------------------------------------------------------------------------------


def _x2_urls(tweet: Mapping[str, Any], out: list[str]) -> None:
    """Append the resolved link targets of a v2 tweet (never the t.co wrapper)."""
    entities = tweet.get("entities")
    note = tweet.get("note_tweet")
    holders = (entities, note.get("entities")) if note and isinstance(note, dict) else (entities,)
    for holder in holders:
        if not holder or not isinstance(holder, dict):
            continue
        urls = holder.get("urls")
        if not urls:
            continue
        if not isinstance(urls, list):
            raise PostParseError(f"X 'entities.urls' must be an array, got {_describe(urls)}")
        for ent in urls:
            if isinstance(ent, dict):
                target = ent.get("unwound_url") or ent.get("expanded_url")
                if target and isinstance(target, str):
                    out.append(target)


def _x2_text(tweet: Mapping[str, Any]) -> str:
    note = tweet.get("note_tweet")
    if note and isinstance(note, dict) and isinstance(note.get("text"), str):
        return note["text"]  # long posts: the full text, `text` is cut at 280
    text = tweet.get("text")
    if isinstance(text, str):
        return text
    return _text(text, "X tweet 'text'")


def _x2_tweet(
    tweet: Mapping[str, Any],
    users: Mapping[str, str],
    ref_tweets: Mapping[str, Mapping[str, Any]],
) -> NormalizedPost:
    # Hot path (every X post): inlined checks, few calls.
    post_id = tweet.get("id")
    if not post_id or not isinstance(post_id, str):
        post_id = _id_str(post_id, "X tweet 'id'", allow_int=True)
    text = _x2_text(tweet)
    links: list[str] = []
    _x2_urls(tweet, links)
    kind = "post"
    ref: str | None = None
    scan = [text]
    refs = tweet.get("referenced_tweets")
    if refs:
        n_own = len(links)
        for r in _dicts(refs):
            rtype, raw_rid = r.get("type"), r.get("id")
            if not isinstance(raw_rid, str | int):
                continue
            rid = str(raw_rid)
            if rtype == "retweeted":
                kind, ref = "repost", rid
            elif rtype == "quoted" and kind != "repost":
                kind, ref = "quote", rid
            elif rtype == "replied_to" and kind == "post":
                kind = "reply"
                continue  # a reply does not mention the papers of its parent
            else:
                continue
            original = ref_tweets.get(rid)
            if original is not None:
                _x2_urls(original, links)
                scan.append(_x2_text(original))
        paper_links = links
        if kind != "repost":  # a quote shows its own links; a retweet shows the original's
            links = links[:n_own]
    else:
        paper_links = links
    ids: set[str] = set()
    for url in paper_links:
        ident = _url_id(url)
        if ident is not None:
            ids.add(ident)
    for t in scan:
        if t:
            ids.update(arxiv_ids_in_text(t))
    author = tweet.get("author_id")
    if author and not isinstance(author, str):
        author = str(author) if isinstance(author, int) else None
    created = tweet.get("created_at")
    return NormalizedPost(
        post_id,
        "x",
        kind,
        author or None,
        users.get(author) if author else None,
        _iso_time(created) if created else None,
        text,
        tuple(dict.fromkeys(links)) if len(links) > 1 else tuple(links),
        tuple(sorted(ids)) if len(ids) > 1 else tuple(ids),
        ref,
    )


def _x2_includes(obj: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """(user id -> username, tweet id -> tweet) from a v2 ``includes``."""
    includes = obj.get("includes")
    if not includes or not isinstance(includes, dict):
        return {}, {}
    users: dict[str, str] = {}
    raw_users = includes.get("users")
    if raw_users:
        for u in _dicts(raw_users):
            uid, name = u.get("id"), u.get("username")
            if isinstance(uid, str | int) and isinstance(name, str):
                users[str(uid)] = name
    tweets: dict[str, dict[str, Any]] = {}
    raw_tweets = includes.get("tweets")
    if raw_tweets:
        for t in _dicts(raw_tweets):
            tid = t.get("id")
            if isinstance(tid, str | int):
                tweets[str(tid)] = t
    return users, tweets


def _parse_x2(obj: Mapping[str, Any]) -> list[NormalizedPost]:
    data = obj["data"]
    users, ref_tweets = _x2_includes(obj)
    if isinstance(data, dict):
        return [_x2_tweet(data, users, ref_tweets)]
    if isinstance(data, list):
        out = []
        for i, tweet in enumerate(data):
            if not isinstance(tweet, dict):
                raise PostParseError(f"X v2 'data[{i}]' must be a tweet object")
            out.append(_x2_tweet(tweet, users, ref_tweets))
        return out
    raise PostParseError(f"X v2 'data' must be an object or an array, got {_describe(data)}")


# ---------------------------------------------------------------------------------
# X API v1.1
# ---------------------------------------------------------------------------------

_V1_TIME = "%a %b %d %H:%M:%S %z %Y"


def _v1_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, _V1_TIME).astimezone(UTC)
    except ValueError:
        return _iso_time(value)


def _v1_urls(status: Mapping[str, Any]) -> list[str]:
    urls: list[str] = []
    ext = status.get("extended_tweet")
    for holder in (status.get("entities"), ext.get("entities") if isinstance(ext, dict) else None):
        if not isinstance(holder, dict):
            continue
        for ent in _dicts(holder.get("urls")):
            unwound = ent.get("unwound")
            target = (unwound.get("url") if isinstance(unwound, dict) else None) or ent.get(
                "expanded_url"
            )
            if isinstance(target, str) and target:
                urls.append(target)
    return urls


def _parse_v1(status: Mapping[str, Any], depth: int = 0) -> NormalizedPost:
    post_id = _id_str(
        status.get("id_str") or status.get("id"), "X v1.1 status 'id_str'", allow_int=True
    )
    ext = status.get("extended_tweet")
    if isinstance(ext, dict) and isinstance(ext.get("full_text"), str):
        text = ext["full_text"]
    else:
        text = _text(status.get("full_text") or status.get("text"), "X v1.1 status 'text'")
    links = _v1_urls(status)
    kind, ref = "post", None
    extra: set[str] = set()
    retweeted, quoted = status.get("retweeted_status"), status.get("quoted_status")
    if isinstance(retweeted, dict) and depth < 2:
        inner = _parse_v1(retweeted, depth + 1)
        kind, ref = "repost", inner.post_id
        links.extend(inner.links)
        extra.update(inner.arxiv_ids)
    elif isinstance(quoted, dict) and depth < 2:
        inner = _parse_v1(quoted, depth + 1)
        kind, ref = "quote", inner.post_id
        extra.update(inner.arxiv_ids)
    elif status.get("is_quote_status") and _opt_str(status.get("quoted_status_id_str")):
        kind, ref = "quote", status["quoted_status_id_str"]
    elif status.get("in_reply_to_status_id_str") or status.get("in_reply_to_status_id"):
        kind = "reply"
    user = status.get("user")
    user = user if isinstance(user, dict) else {}
    uid = user.get("id_str") or user.get("id")
    return NormalizedPost(
        post_id=post_id,
        source="x",
        kind=kind,
        author_id=str(uid) if isinstance(uid, str | int) and uid != "" else None,
        author_handle=_opt_str(user.get("screen_name")),
        created_at=_v1_time(status.get("created_at")),
        text=text,
        links=_dedupe(links),
        arxiv_ids=tuple(sorted(_papers(links, (text,), extra))),
        ref_post_id=ref,
    )


def _is_v1_status(obj: Mapping[str, Any]) -> bool:
    return "id_str" in obj or ("user" in obj and ("text" in obj or "full_text" in obj))


# ---------------------------------------------------------------------------------
# Bluesky Jetstream
# ---------------------------------------------------------------------------------

_BSKY_POST = "app.bsky.feed.post"
_BSKY_REPOST = "app.bsky.feed.repost"
_LINK_FACET = "app.bsky.richtext.facet#link"


def _bsky_links(record: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """Link URIs of a post record, and the URI of the post it quotes (if any)."""
    links: list[str] = []
    facets = record.get("facets")
    if facets:
        for facet in _dicts(facets):
            features = facet.get("features")
            if not features:
                continue
            for feat in _dicts(features):
                uri = feat.get("uri")
                if feat.get("$type") == _LINK_FACET and isinstance(uri, str):
                    links.append(uri)
    quoted: str | None = None
    embed = record.get("embed")
    if isinstance(embed, dict):
        external = embed.get("external")
        media = embed.get("media")
        if isinstance(media, dict):  # app.bsky.embed.recordWithMedia
            external = media.get("external") or external
        if isinstance(external, dict) and isinstance(external.get("uri"), str):
            links.append(external["uri"])
        rec = embed.get("record")
        if isinstance(rec, dict):
            # embed.record is a strongRef; in recordWithMedia it wraps one more level.
            inner = rec.get("record")
            ref_obj = inner if isinstance(inner, dict) else rec
            if isinstance(ref_obj.get("uri"), str):
                quoted = ref_obj["uri"]
    return links, quoted


def _time_us(value: object) -> datetime | None:
    """Jetstream's event time (microseconds since the epoch)."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1_000_000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _parse_jetstream(obj: Mapping[str, Any]) -> list[NormalizedPost]:
    event_kind = obj.get("kind")
    if event_kind in ("identity", "account"):
        return []
    if event_kind != "commit":
        raise PostParseError(f"unknown Bluesky Jetstream event kind {_describe(event_kind)}")
    commit = obj.get("commit")
    if not isinstance(commit, dict):
        raise PostParseError(f"Jetstream 'commit' must be an object, got {_describe(commit)}")
    collection = commit.get("collection")
    if collection != _BSKY_POST and collection != _BSKY_REPOST:
        return []  # likes, follows, blocks, profiles, other lexicons: not posts
    did = obj.get("did")
    if not did or not isinstance(did, str):
        did = _id_str(did, "Jetstream 'did'")
    rkey = commit.get("rkey")
    if not rkey or not isinstance(rkey, str):
        rkey = _id_str(rkey, "Jetstream 'commit.rkey'")
    uri = f"at://{did}/{collection}/{rkey}"
    operation = commit.get("operation")
    if operation == "delete":
        when = _time_us(obj.get("time_us"))
        return [NormalizedPost(uri, "bluesky", "delete", did, None, when, "", (), (), uri)]
    if operation not in ("create", "update"):
        raise PostParseError(f"unknown Jetstream commit operation {_describe(operation)}")
    record = commit.get("record")
    if not isinstance(record, dict):
        record = _dict(record, "Jetstream 'commit.record'")
    created = _iso_time(record.get("createdAt")) or _time_us(obj.get("time_us"))
    if collection == _BSKY_REPOST:
        subject = _dict(record.get("subject"), "repost 'subject'")
        ref = _id_str(subject.get("uri"), "repost 'subject.uri'")
        # The subject's papers are not in the event: the stream joins them later.
        return [NormalizedPost(uri, "bluesky", "repost", did, None, created, "", (), (), ref)]
    text = record.get("text")
    if not isinstance(text, str):
        text = _text(text, "Bluesky post 'text'")
    links, quoted = _bsky_links(record)
    kind = "quote" if quoted else ("reply" if isinstance(record.get("reply"), dict) else "post")
    ids: set[str] = set()
    for url in links:
        ident = _url_id(url)
        if ident is not None:
            ids.add(ident)
    if text:
        ids.update(arxiv_ids_in_text(text))
    return [
        NormalizedPost(
            uri,
            "bluesky",
            kind,
            did,
            None,
            created,
            text,
            tuple(dict.fromkeys(links)) if len(links) > 1 else tuple(links),
            tuple(sorted(ids)) if len(ids) > 1 else tuple(ids),
            quoted,
        )
    ]


# ---------------------------------------------------------------------------------
# Mastodon
# ---------------------------------------------------------------------------------

_HREF_RE = re.compile(r"""<a\s[^>]*?href=["']([^"']+)["']""", re.IGNORECASE)
_BREAK_RE = re.compile(r"<br\s*/?>|</p>", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]*>")


def _html_text(content: str) -> str:
    # Mastodon keeps the hidden part of long URLs in "invisible" spans, so removing
    # the tags gives the full URL back, not the truncated display.
    return html.unescape(_TAG_RE.sub("", _BREAK_RE.sub("\n", content))).strip()


def _parse_mastodon(status: Mapping[str, Any], depth: int = 0) -> NormalizedPost:
    post_id = _id_str(status.get("uri"), "Mastodon status 'uri'")
    content = _text(status.get("content"), "Mastodon status 'content'")
    text = _html_text(content) if "<" in content or "&" in content else content
    links = [html.unescape(h) for h in _HREF_RE.findall(content)]
    card = status.get("card")
    if isinstance(card, dict) and isinstance(card.get("url"), str):
        links.append(card["url"])
    kind, ref = "post", None
    extra: set[str] = set()
    reblog = status.get("reblog")
    quote = status.get("quote")
    quoted = quote.get("quoted_status") if isinstance(quote, dict) else None
    if isinstance(reblog, dict) and depth < 2:
        inner = _parse_mastodon(reblog, depth + 1)
        kind, ref = "repost", inner.post_id
        links.extend(inner.links)
        extra.update(inner.arxiv_ids)
    elif isinstance(quoted, dict) and depth < 2:
        inner = _parse_mastodon(quoted, depth + 1)
        kind, ref = "quote", inner.post_id
        extra.update(inner.arxiv_ids)
    elif status.get("in_reply_to_id"):
        kind = "reply"
    account = status.get("account")
    account = account if isinstance(account, dict) else {}
    aid = account.get("id")
    return NormalizedPost(
        post_id=post_id,
        source="mastodon",
        kind=kind,
        author_id=str(aid) if isinstance(aid, str | int) and aid != "" else None,
        author_handle=_opt_str(account.get("acct")),
        created_at=_iso_time(status.get("created_at")),
        text=text,
        links=_dedupe(links),
        arxiv_ids=tuple(sorted(_papers(links, (text,), extra))),
        ref_post_id=ref,
    )


def _is_mastodon(obj: Mapping[str, Any]) -> bool:
    return "uri" in obj and "content" in obj and "account" in obj


_MASTODON_STATUS_EVENTS = ("update", "status.update")


def _parse_mastodon_event(obj: Mapping[str, Any]) -> list[NormalizedPost]:
    """A streaming-API websocket message ``{"event", "payload"}``."""
    if obj.get("event") not in _MASTODON_STATUS_EVENTS:
        return []  # notifications, deletes (id only, no URI), filters...
    payload = obj.get("payload")
    if isinstance(payload, str):
        payload = _decode(payload)
    return [_parse_mastodon(_dict(payload, "Mastodon event 'payload'"))]


# ---------------------------------------------------------------------------------
# Fast path: typed decoding of the two shapes that make up almost all traffic
# ---------------------------------------------------------------------------------
#
# An X v2 stream message or response page, and a Jetstream post/repost commit, are
# decoded with msgspec into Structs that name only the fields read above: the decoder
# skips everything else (metrics, user bios, blob refs) without building objects, and
# rejects any field of an unexpected type. Whatever it does not accept, and any shape
# it cannot decide exactly as the general code would, returns None and goes the
# general (orjson + dict) way, which also writes every error message. The results are
# identical by construction and by test (tests/unit/test_posts.py).


class _XUrl(msgspec.Struct, gc=False):
    unwound_url: str | None = None
    expanded_url: str | None = None


class _XEntities(msgspec.Struct, gc=False):
    urls: list[_XUrl] | None = None


class _XNote(msgspec.Struct, gc=False):
    text: str | None = None
    entities: _XEntities | None = None


class _XRef(msgspec.Struct, gc=False):
    type: str | None = None
    id: str | None = None


class _XTweet(msgspec.Struct, gc=False):
    id: str | None = None
    text: str | None = None
    author_id: str | None = None
    created_at: str | None = None
    entities: _XEntities | None = None
    note_tweet: _XNote | None = None
    referenced_tweets: list[_XRef] | None = None


class _XUser(msgspec.Struct, gc=False):
    id: str | None = None
    username: str | None = None


class _XIncludes(msgspec.Struct, gc=False):
    users: list[_XUser] | None = None
    tweets: list[_XTweet] | None = None


class _BFeature(msgspec.Struct, gc=False):
    type: str | None = msgspec.field(default=None, name="$type")
    uri: str | None = None


class _BFacet(msgspec.Struct, gc=False):
    features: list[_BFeature] | None = None


class _BUri(msgspec.Struct, gc=False):
    """An external link, or a strongRef; only the URI matters."""

    uri: str | None = None


class _BMedia(msgspec.Struct, gc=False):
    external: _BUri | None = None


class _BEmbedRecord(msgspec.Struct, gc=False):
    uri: str | None = None
    record: _BUri | None = None


class _BEmbed(msgspec.Struct, gc=False):
    external: _BUri | None = None
    media: _BMedia | None = None
    record: _BEmbedRecord | None = None


class _BAnyObject(msgspec.Struct, gc=False):
    """Any JSON object (``reply``: only its being an object matters)."""


class _BRecord(msgspec.Struct, gc=False):
    """A post record or a repost record: the fields read of either.

    One type for both, decoded with the envelope in the same pass (a second decode of
    a raw record cost a third of the decoding). ``subject`` also takes the string
    subject of follows and blocks, so that those events still decode.
    """

    text: str | None = None
    created_at: str | None = msgspec.field(default=None, name="createdAt")
    facets: list[_BFacet] | None = None
    embed: _BEmbed | None = None
    reply: _BAnyObject | None = None
    subject: _BUri | str | None = None


class _JCommit(msgspec.Struct, gc=False):
    operation: str | None = None
    collection: str | None = None
    rkey: str | None = None
    record: _BRecord | None = None


class _Envelope(msgspec.Struct, gc=False):
    """The top level of both shapes; UNSET tells an absent ``data`` from a null one."""

    data: _XTweet | list[_XTweet] | msgspec.UnsetType | None = msgspec.UNSET
    includes: _XIncludes | None = None
    did: str | None = None
    kind: str | None = None
    time_us: int | None = None
    commit: _JCommit | None = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_UNSET = msgspec.UNSET
_int_max_str_digits = sys.get_int_max_str_digits


class _PostBuilder:
    """A settable twin of `NormalizedPost`: the same slots in the same order.

    A frozen dataclass sets each field in ``__init__`` through ``object.__setattr__``,
    several times slower than a plain slot store. The fast path fills one of these
    with plain stores and then makes it a `NormalizedPost` by assigning ``__class__``,
    which CPython allows exactly between classes of identical layout (TypeError
    otherwise). The result is an ordinary, frozen `NormalizedPost`.
    """

    __slots__ = NormalizedPost.__slots__

    post_id: str
    source: str
    kind: str
    author_id: str | None
    author_handle: str | None
    created_at: datetime | None
    text: str
    links: tuple[str, ...]
    arxiv_ids: tuple[str, ...]
    ref_post_id: str | None


_new_builder = object.__new__


def _post(
    post_id: str,
    source: str,
    kind: str,
    author_id: str | None,
    author_handle: str | None,
    created_at: datetime | None,
    text: str,
    links: tuple[str, ...],
    arxiv_ids: tuple[str, ...],
    ref_post_id: str | None,
) -> NormalizedPost:
    """``NormalizedPost(...)`` with the same arguments, more than twice as fast."""
    post: _PostBuilder = _new_builder(_PostBuilder)
    post.post_id = post_id
    post.source = source
    post.kind = kind
    post.author_id = author_id
    post.author_handle = author_handle
    post.created_at = created_at
    post.text = text
    post.links = links
    post.arxiv_ids = arxiv_ids
    post.ref_post_id = ref_post_id
    post.__class__ = NormalizedPost  # type: ignore[assignment]
    return post  # type: ignore[return-value]


# A field added to NormalizedPost must be set above too: fail at import, not later.
if _post.__code__.co_varnames[: _post.__code__.co_argcount] != tuple(
    f.name for f in fields(NormalizedPost)
):
    raise RuntimeError("_post must take and set exactly the fields of NormalizedPost")


def _ids(links: list[str], text: str, more_texts: list[str] | None = None) -> tuple[str, ...]:
    """`_papers` for the fast path: the sorted IDs of the links and texts, as a tuple."""
    ids: set[str] = set()
    for url in links:
        ident = _url_id(url)
        if ident is not None:
            ids.add(ident)
    if text:
        _text_ids_into(text, ids)
    if more_texts:
        for other in more_texts:
            if other:
                _text_ids_into(other, ids)
    if len(ids) > 1:
        return tuple(sorted(ids))
    return tuple(ids)


def _fx_urls(tweet: _XTweet, out: list[str]) -> None:
    """As `_x2_urls`, on a typed tweet."""
    entities = tweet.entities
    if entities is not None and entities.urls:
        for ent in entities.urls:
            target = ent.unwound_url or ent.expanded_url
            if target:
                out.append(target)
    note = tweet.note_tweet
    if note is not None and note.entities is not None and note.entities.urls:
        for ent in note.entities.urls:
            target = ent.unwound_url or ent.expanded_url
            if target:
                out.append(target)


def _fx_text(tweet: _XTweet) -> str:
    note = tweet.note_tweet
    if note is not None and note.text is not None:
        return note.text
    return tweet.text or ""


def _fx_tweet(
    tweet: _XTweet, users: dict[str, str], ref_tweets: dict[str, _XTweet]
) -> NormalizedPost | None:
    """As `_x2_tweet`, on a typed tweet; None where the general code must decide."""
    post_id = tweet.id
    if not post_id:
        return None  # the general path explains
    links: list[str] = []
    if tweet.note_tweet is None:  # the usual case, `_fx_text` and `_fx_urls` inlined
        text = tweet.text or ""
        entities = tweet.entities
        if entities is not None and entities.urls:
            for ent in entities.urls:
                target = ent.unwound_url or ent.expanded_url
                if target:
                    links.append(target)
    else:
        text = _fx_text(tweet)
        _fx_urls(tweet, links)
    kind = "post"
    ref: str | None = None
    quoted_texts: list[str] | None = None
    paper_links = links
    refs = tweet.referenced_tweets
    if refs:
        n_own = len(links)
        for r in refs:
            rtype, rid = r.type, r.id
            if rid is None:
                continue
            if rtype == "retweeted":
                kind, ref = "repost", rid
            elif rtype == "quoted" and kind != "repost":
                kind, ref = "quote", rid
            elif rtype == "replied_to" and kind == "post":
                kind = "reply"
                continue
            else:
                continue
            original = ref_tweets.get(rid)
            if original is not None:
                _fx_urls(original, links)
                if quoted_texts is None:
                    quoted_texts = []
                quoted_texts.append(_fx_text(original))
        if kind != "repost":
            links = links[:n_own]
    author = tweet.author_id or None
    created = tweet.created_at
    return _post(
        post_id,
        "x",
        kind,
        author,
        users.get(author) if author else None,
        _iso_time(created) if created else None,
        text,
        tuple(dict.fromkeys(links)) if len(links) > 1 else tuple(links),
        _ids(paper_links, text, quoted_texts),
        ref,
    )


def _fast_x2(env: _Envelope) -> list[NormalizedPost] | None:
    data = env.data
    users: dict[str, str] = {}
    ref_tweets: dict[str, _XTweet] = {}
    includes = env.includes
    if includes is not None:
        if includes.users:
            for u in includes.users:
                if u.id is not None and u.username is not None:
                    users[u.id] = u.username
        if includes.tweets:
            for t in includes.tweets:
                if t.id is not None:
                    ref_tweets[t.id] = t
    if isinstance(data, _XTweet):
        post = _fx_tweet(data, users, ref_tweets)
        return None if post is None else [post]
    if isinstance(data, list):
        out = []
        for tweet in data:
            post = _fx_tweet(tweet, users, ref_tweets)
            if post is None:
                return None
            out.append(post)
        return out
    return None  # null data: an error body, or an error message to write


def _fast_jetstream(env: _Envelope) -> list[NormalizedPost] | None:
    """As `_parse_jetstream`, on a typed event; None where the general code must decide."""
    event_kind = env.kind
    if event_kind == "identity" or event_kind == "account":
        return []
    commit = env.commit
    if event_kind != "commit" or commit is None:
        return None
    collection = commit.collection
    if collection != _BSKY_POST and collection != _BSKY_REPOST:
        return []
    did, rkey, operation = env.did, commit.rkey, commit.operation
    if not did or not rkey:
        return None
    uri = f"at://{did}/{collection}/{rkey}"
    if operation == "delete":
        when = _time_us(env.time_us)
        return [_post(uri, "bluesky", "delete", did, None, when, "", (), (), uri)]
    if operation != "create" and operation != "update":
        return None
    record = commit.record
    if record is None:
        return None
    if collection == _BSKY_REPOST:
        subject = record.subject
        if not isinstance(subject, _BUri) or not subject.uri:
            return None
        created = _iso_time(record.created_at) or _time_us(env.time_us)
        return [_post(uri, "bluesky", "repost", did, None, created, "", (), (), subject.uri)]
    created = _iso_time(record.created_at) or _time_us(env.time_us)
    text = record.text or ""
    links: list[str] = []
    if record.facets:
        for facet in record.facets:
            if facet.features:
                for feat in facet.features:
                    if feat.type == _LINK_FACET and feat.uri is not None:
                        links.append(feat.uri)
    quoted: str | None = None
    embed = record.embed
    if embed is not None:
        external = embed.external
        media = embed.media
        if media is not None and media.external is not None:
            if media.external.uri is None:
                return None  # `media.external or external` turns on dict truthiness
            external = media.external
        if external is not None and external.uri is not None:
            links.append(external.uri)
        rec = embed.record
        if rec is not None:
            quoted = rec.record.uri if rec.record is not None else rec.uri
    kind = "quote" if quoted else ("reply" if record.reply is not None else "post")
    return [
        _post(
            uri,
            "bluesky",
            kind,
            did,
            None,
            created,
            text,
            tuple(dict.fromkeys(links)) if len(links) > 1 else tuple(links),
            _ids(links, text),
            quoted,
        )
    ]


def _fast_parse(line: str | bytes) -> list[NormalizedPost] | None:
    """The posts of an X v2 or Jetstream line, or None: then the general path decides."""
    kind = type(line)
    if kind is bytes:
        # msgspec does not check the UTF-8 of the strings it skips; the general path
        # rejects invalid UTF-8 anywhere, so check it here (ASCII needs no check).
        if not line.isascii():
            try:
                line.decode()  # type: ignore[union-attr]
            except UnicodeDecodeError:
                return None
    elif kind is not str:
        return None
    limit = _int_max_str_digits()
    if limit and len(line) > limit and _has_long_digit_run(line, limit):
        return None  # an integer past Python's digit limit is an error on the general path
    try:
        env = _ENVELOPE.decode(line)
        data = env.data
        if data is not _UNSET:
            if data is None:
                return None
            return _fast_x2(env)
        if env.did is not None and env.kind is not None:
            return _fast_jetstream(env)
    except (msgspec.DecodeError, RecursionError, ValueError, TypeError, OverflowError):
        return None  # ValidationError is a DecodeError: a type the general path judges
    return None


def _has_long_digit_run(line: str | bytes, limit: int) -> bool:
    """Does ``line`` hold a run of more than ``limit`` ASCII digits (in a number or not)?

    Such a run covers a multiple of ``limit``, so only the runs through those
    positions are measured: a few lookups per line instead of a scan.
    """
    digits = _DIGIT_BYTES if isinstance(line, bytes) else _DIGIT_CHARS
    n = len(line)
    for i in range(limit, n, limit):
        if line[i] in digits:
            start, end = i, i + 1
            while start > 0 and line[start - 1] in digits:
                start -= 1
            while end < n and line[end] in digits:
                end += 1
            if end - start > limit:
                return True
    return False


_DIGIT_BYTES = frozenset(b"0123456789")
_DIGIT_CHARS = frozenset("0123456789")


# ---------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------

_X_PROBLEM = "https://api.twitter.com/2/problems/"


def _parse_object(obj: dict[str, Any]) -> list[NormalizedPost]:
    if "data" in obj:
        if obj["data"] is None and "errors" in obj:
            return []
        return _parse_x2(obj)
    if "did" in obj and "kind" in obj:
        return _parse_jetstream(obj)
    if _is_mastodon(obj):
        return [_parse_mastodon(obj)]
    if _is_v1_status(obj):
        return [_parse_v1(obj)]
    if isinstance(obj.get("statuses"), list):  # v1.1 search page
        return _parse_array(obj["statuses"])
    if "errors" in obj:
        return []  # an X error body (v2 or v1.1) with no posts in it
    if str(obj.get("type", "")).startswith(_X_PROBLEM):
        return []  # X v2 problem document (rate limit, too many connections)
    if "event" in obj and "payload" in obj:
        return _parse_mastodon_event(obj)
    keys = ", ".join(sorted(map(str, obj))[:8]) or "none"
    raise PostParseError(f"unrecognised payload: an object with keys {keys}")


def _parse_array(items: list[Any]) -> list[NormalizedPost]:
    out: list[NormalizedPost] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PostParseError(f"array item {i} must be a post object, got {_describe(item)}")
        if _is_v1_status(item):
            out.append(_parse_v1(item))
        elif _is_mastodon(item):
            out.append(_parse_mastodon(item))
        else:
            raise PostParseError(f"array item {i} is not an X v1.1 or Mastodon status")
    return out


def parse_payload(obj: object) -> list[NormalizedPost]:
    """The posts in one decoded payload; ``[]`` for events that are not posts."""
    try:
        if isinstance(obj, dict):
            return _parse_object(obj)
        if isinstance(obj, list):
            return _parse_array(obj)
    except PostParseError:
        raise
    except (TypeError, KeyError, AttributeError, ValueError, IndexError) as exc:
        raise PostParseError(f"malformed payload: {type(exc).__name__}: {exc}") from exc
    raise PostParseError(f"unrecognised payload: expected a JSON object, got {_describe(obj)}")


def _decode(line: str | bytes) -> object:
    try:
        return _fast_loads(line)
    except _FastDecodeError:
        return _decode_slow(line)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value: object) -> object:
    """`value` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {
            _LONE_SURROGATE.sub("\ufffd", key): _without_lone_surrogates(item)
            for key, item in value.items()
        }
    return value


def _decode_slow(line: str | bytes) -> object:
    if not isinstance(line, str | bytes | bytearray):
        raise PostParseError(f"expected a str or bytes line, got {type(line).__name__}")
    if not line.strip():
        raise PostParseError("empty line")
    # Slow path, only for bad or unusual input: the stdlib either accepts what orjson
    # refuses (lone surrogate escapes, huge integers) or explains the problem.
    if isinstance(line, bytes | bytearray):
        try:
            text = bytes(line).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PostParseError(f"invalid UTF-8 at byte {exc.start}: {exc.reason}") from None
    else:
        text = line
    try:
        obj = json.loads(text)
        # The stdlib keeps lone surrogate escapes ("\ud800"), which no UTF-8 encoder
        # downstream accepts (Faust's changelog crashed on one): replace them with U+FFFD.
        return _without_lone_surrogates(obj) if "\\u" in text else obj
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            reason = f"input ends in the middle of a value (truncated?): {exc.msg}"
        else:
            reason = exc.msg
        raise PostParseError(
            f"invalid JSON: {reason} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise PostParseError("invalid JSON: nested too deeply") from None
    except ValueError as exc:
        # Not a syntax error: e.g. an integer literal longer than Python converts (4300
        # digits). Still input we cannot read, so still a PostParseError.
        raise PostParseError(f"invalid JSON: {str(exc)[:200]}") from None


def parse_line(line: str | bytes) -> list[NormalizedPost]:
    """Decode one JSON document (a JSONL line) and return the posts in it."""
    posts = _fast_parse(line)
    if posts is not None:
        return posts
    try:
        obj = _fast_loads(line)
    except _FastDecodeError:
        obj = _decode_slow(line)
    except TypeError:
        raise PostParseError(f"expected a str or bytes line, got {type(line).__name__}") from None
    return parse_payload(obj)
