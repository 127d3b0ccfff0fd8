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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trending_arxiv.ids import _id_from_url as _url_id  # cached; callers pass str only
from trending_arxiv.ids import arxiv_id_from_url, arxiv_ids_in_text

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
        return json.loads(text)
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


def parse_line(line: str | bytes) -> list[NormalizedPost]:
    """Decode one JSON document (a JSONL line) and return the posts in it."""
    try:
        obj = _fast_loads(line)
    except _FastDecodeError:
        obj = _decode_slow(line)
    except TypeError:
        raise PostParseError(f"expected a str or bytes line, got {type(line).__name__}") from None
    return parse_payload(obj)
