"""Bluesky, through Jetstream: post, repost and delete commits. One parser,
`_fast_jetstream`, for typed events and for decoded dicts (loaded by `_parse_jetstream`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from trending_arxiv.core.posts.common import (
    NormalizedPost,
    PostParseError,
    _describe,
    _dict,
    _dicts,
    _id_str,
    _ids,
    _iso_time,
    _post,
    _text,
)

if TYPE_CHECKING:
    from trending_arxiv.core.posts.fast import _Envelope

_BSKY_POST = "app.bsky.feed.post"
_BSKY_REPOST = "app.bsky.feed.repost"
_LINK_FACET = "app.bsky.richtext.facet#link"


def _bsky_links(record: Mapping[str, Any]) -> tuple[list[str], str | None, str | None]:
    """A post record's facet link URIs, its embed's external link and the URI of the post
    it quotes (each None when absent), read as they were always read."""
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
    external_uri: str | None = None
    quoted: str | None = None
    embed = record.get("embed")
    if isinstance(embed, dict):
        external = embed.get("external")
        media = embed.get("media")
        if isinstance(media, dict):  # app.bsky.embed.recordWithMedia
            external = media.get("external") or external
        if isinstance(external, dict) and isinstance(external.get("uri"), str):
            external_uri = external["uri"]
        rec = embed.get("record")
        if isinstance(rec, dict):
            # embed.record is a strongRef; in recordWithMedia it wraps one more level.
            inner = rec.get("record")
            ref_obj = inner if isinstance(inner, dict) else rec
            if isinstance(ref_obj.get("uri"), str):
                quoted = ref_obj["uri"]
    return links, external_uri, quoted


def _time_us(value: object) -> datetime | None:
    """Jetstream's event time (microseconds since the epoch)."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1_000_000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _parse_jetstream(obj: Mapping[str, Any]) -> list[NormalizedPost]:
    """A decoded Jetstream event: loaded into the typed event, then parsed as typed ones are
    (`_fast_jetstream`, Jetstream's one parser). The loading judges what the typed
    decoder cannot take and explains it, in the order the fields are parsed."""
    from trending_arxiv.core.posts.fast import _Envelope  # fast.py imports this module

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
    operation = commit.get("operation")
    time_us = obj.get("time_us")
    if not isinstance(time_us, int) or isinstance(time_us, bool):
        time_us = None
    record: _BRecord | None = None
    if operation in ("create", "update"):
        record = _bsky_record(commit.get("record"), collection)
    elif operation != "delete":
        raise PostParseError(f"unknown Jetstream commit operation {_describe(operation)}")
    loaded = _Envelope(
        did=did,
        kind=event_kind,
        time_us=time_us,
        commit=_JCommit(operation=operation, collection=collection, rkey=rkey, record=record),
    )
    posts = _fast_jetstream(loaded)
    assert posts is not None  # a loaded event leaves nothing undecided
    return posts


def _bsky_record(raw: object, collection: str) -> _BRecord:
    """A post or repost record as the typed record, judged as it is read."""
    record = raw if isinstance(raw, dict) else _dict(raw, "Jetstream 'commit.record'")
    created = record.get("createdAt")
    created_at = created if isinstance(created, str) else None
    if collection == _BSKY_REPOST:
        subject = _dict(record.get("subject"), "repost 'subject'")
        uri = _id_str(subject.get("uri"), "repost 'subject.uri'")
        # The subject's papers are not in the event: the stream joins them later.
        return _BRecord(created_at=created_at, subject=_BUri(uri))
    text = record.get("text")
    if not isinstance(text, str):
        text = _text(text, "Bluesky post 'text'")
    links, external, quoted = _bsky_links(record)
    return _BRecord(
        text=text,
        created_at=created_at,
        facets=[_BFacet([_BFeature(_LINK_FACET, link) for link in links])] if links else None,
        embed=_BEmbed(
            external=None if external is None else _BUri(external),
            record=None if quoted is None else _BEmbedRecord(uri=quoted),
        ),
        reply=_BAnyObject() if isinstance(record.get("reply"), dict) else None,
    )


# ---------------------------------------------------------------------------------
# Typed path (see fast.py)
# ---------------------------------------------------------------------------------


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


def _fast_jetstream(env: _Envelope) -> list[NormalizedPost] | None:
    """Jetstream's one parser, on a typed event; None where the typed decoding left
    something undecided (`_parse_jetstream` then loads the dict and explains)."""
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
