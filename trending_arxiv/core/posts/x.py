"""X: API v2 (stream messages and response pages: one parser, `_fx_tweet`, for the typed
fast path and for decoded dicts through `_x2_loaded`) and v1.1."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from trending_arxiv.core.posts.common import (
    NormalizedPost,
    PostParseError,
    _dedupe,
    _describe,
    _dicts,
    _id_str,
    _ids,
    _iso_time,
    _opt_str,
    _papers,
    _post,
    _text,
)

if TYPE_CHECKING:
    from trending_arxiv.core.posts.fast import _Envelope


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


def _x2_loaded(tweet: Mapping[str, Any]) -> _XTweet:
    """A decoded v2 tweet as the typed tweet `_fx_tweet` parses (X's one parser).

    Reads what the typed decoder cannot take as it is (an int id, a non-object among
    the references, a field of an unexpected type), in the order the fields are parsed,
    and explains what is wrong. Text and links are resolved here: the note's text when
    there is one, and every link target, the note's after the tweet's.
    """
    post_id = tweet.get("id")
    if not post_id or not isinstance(post_id, str):
        post_id = _id_str(post_id, "X tweet 'id'", allow_int=True)
    text = _x2_text(tweet)  # before the links (a cited tweet: after)
    links: list[str] = []
    _x2_urls(tweet, links)
    refs: list[_XRef] | None = None
    raw_refs = tweet.get("referenced_tweets")
    if raw_refs:
        refs = []
        for r in _dicts(raw_refs):
            rtype, rid = r.get("type"), r.get("id")
            if isinstance(rid, str | int):
                refs.append(_XRef(rtype if isinstance(rtype, str) else None, str(rid)))
    author = tweet.get("author_id")
    if author and not isinstance(author, str):
        author = str(author) if isinstance(author, int) else None
    created = tweet.get("created_at")
    return _XTweet(
        id=post_id,
        text=text,
        author_id=author or None,
        created_at=created if isinstance(created, str) else None,
        entities=_XEntities([_XUrl(link) for link in links]),
        referenced_tweets=refs,
    )


def _x2_loaded_original(tweet: Mapping[str, Any]) -> _XTweet:
    """What a referenced tweet lends the post that cites it: its links, then its text."""
    links: list[str] = []
    _x2_urls(tweet, links)
    text = _x2_text(tweet)
    return _XTweet(text=text, entities=_XEntities([_XUrl(link) for link in links]))


class _LoadedOnUse(dict[str, Any]):
    """The tweets of ``includes``, each loaded (and judged) when a post cites it."""

    def get(self, key: str, default: Any = None) -> Any:
        raw = super().get(key)
        return default if raw is None else _x2_loaded_original(raw)


def _x2_post(
    tweet: Mapping[str, Any], users: dict[str, str], originals: _LoadedOnUse
) -> NormalizedPost:
    post = _fx_tweet(_x2_loaded(tweet), users, originals)
    assert post is not None  # a loaded tweet always has an id
    return post


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
    """A decoded v2 message or page: each tweet loaded, then parsed as typed ones are."""
    data = obj["data"]
    users, raw_tweets = _x2_includes(obj)
    originals = _LoadedOnUse(raw_tweets)
    if isinstance(data, dict):
        return [_x2_post(data, users, originals)]
    if isinstance(data, list):
        out = []
        for i, tweet in enumerate(data):
            if not isinstance(tweet, dict):
                raise PostParseError(f"X v2 'data[{i}]' must be a tweet object")
            out.append(_x2_post(tweet, users, originals))
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
# Typed path (see fast.py)
# ---------------------------------------------------------------------------------


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
    tweet: _XTweet, users: dict[str, str], ref_tweets: Mapping[str, _XTweet]
) -> NormalizedPost | None:
    """X v2's one parser: a typed tweet (decoded by the fast path, or loaded from a dict
    by `_x2_loaded`) as a post; None when it has no id (`_x2_loaded` explains)."""
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
