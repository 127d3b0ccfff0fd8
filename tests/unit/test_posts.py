"""Post normalisation: every payload shape, repost/quote/long-post/delete semantics, bad input."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trending_arxiv.core import posts as posts_module
from trending_arxiv.core.posts import NormalizedPost, PostParseError, parse_line, parse_payload

ARXIV = "https://arxiv.org/abs/2401.12345v2"


def _tco(expanded: str, unwound: str | None = None) -> dict[str, Any]:
    ent = {
        "start": 0,
        "end": 23,
        "url": "https://t.co/abcdefghij",
        "expanded_url": expanded,
        "display_url": expanded.split("://")[-1][:20] + "\u2026",
    }
    if unwound is not None:
        ent["unwound_url"] = unwound
    return ent


def _x2_tweet(tid: str = "100", **extra: Any) -> dict[str, Any]:
    tweet = {
        "id": tid,
        "author_id": "42",
        "created_at": "2024-01-22T10:11:12.000Z",
        "text": "Nice https://t.co/abcdefghij",
        "entities": {"urls": [_tco(ARXIV)]},
    }
    tweet.update(extra)
    return tweet


def _stream(tweet: dict[str, Any], includes: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "data": tweet,
        "includes": includes or {"users": [{"id": "42", "username": "alice", "name": "A"}]},
        "matching_rules": [{"id": "1", "tag": "arxiv"}],
    }


# ---------------------------------------------------------------------------------
# X API v2
# ---------------------------------------------------------------------------------


def test_x2_stream_message() -> None:
    [post] = parse_payload(_stream(_x2_tweet()))
    assert post == NormalizedPost(
        post_id="100",
        source="x",
        kind="post",
        author_id="42",
        author_handle="alice",
        created_at=datetime(2024, 1, 22, 10, 11, 12, tzinfo=UTC),
        text="Nice https://t.co/abcdefghij",
        links=(ARXIV,),
        arxiv_ids=("2401.12345",),
        ref_post_id=None,
    )


def test_x2_prefers_unwound_url_and_never_uses_tco() -> None:
    tweet = _x2_tweet(
        entities={
            "urls": [
                _tco("https://bit.ly/xyz", unwound="https://arxiv.org/pdf/1602.02410v1.pdf"),
                {"url": "https://t.co/onlytco", "start": 0, "end": 5},
            ]
        }
    )
    [post] = parse_payload(_stream(tweet))
    assert post.links == ("https://arxiv.org/pdf/1602.02410v1.pdf",)
    assert post.arxiv_ids == ("1602.02410",)


def test_x2_page_gives_one_post_per_tweet() -> None:
    page = {
        "data": [
            _x2_tweet("1"),
            _x2_tweet("2", entities={"urls": [_tco("https://huggingface.co/papers/2501.00001")]}),
            _x2_tweet("3", entities={}),
        ],
        "includes": {"users": [{"id": "42", "username": "alice"}]},
        "meta": {"result_count": 3, "next_token": "abc"},
        "errors": [{"title": "Not Found Error", "detail": "gone"}],
    }
    posts = parse_payload(page)
    assert [p.post_id for p in posts] == ["1", "2", "3"]
    assert [p.arxiv_ids for p in posts] == [("2401.12345",), ("2501.00001",), ()]
    assert all(p.author_handle == "alice" for p in posts)


def test_x2_errors_only_body_gives_no_posts() -> None:
    assert parse_payload({"errors": [{"title": "Not Found Error"}]}) == []
    assert parse_payload({"data": None, "errors": [{"title": "x"}]}) == []


def test_x2_problem_document_gives_no_posts() -> None:
    problem = {
        "title": "ConnectionException",
        "detail": "This stream is currently at the maximum allowed connection limit.",
        "connection_issue": "TooManyConnections",
        "type": "https://api.twitter.com/2/problems/streaming-connection",
    }
    assert parse_payload(problem) == []


def test_x2_retweet_takes_papers_from_the_original_in_includes() -> None:
    original = _x2_tweet(
        "900",
        text="Our paper arXiv:1602.02410 and https://t.co/abcdefghij",
        entities={"urls": [_tco("https://arxiv.org/abs/2401.12345")]},
    )
    retweet = _x2_tweet(
        "901",
        text="RT @bob: Our paper arXiv:1602.0\u2026",  # truncated: must not be read
        entities={"urls": []},
        referenced_tweets=[{"type": "retweeted", "id": "900"}],
    )
    [post] = parse_payload(
        _stream(retweet, {"users": [{"id": "42", "username": "alice"}], "tweets": [original]})
    )
    assert post.kind == "repost"
    assert post.ref_post_id == "900"
    assert post.arxiv_ids == ("1602.02410", "2401.12345")
    assert post.links == ("https://arxiv.org/abs/2401.12345",)


def test_x2_retweet_without_original_in_payload() -> None:
    retweet = _x2_tweet(
        "901",
        text="RT @bob: look arxiv.org/abs/2401.1\u2026",
        entities={"urls": []},
        referenced_tweets=[{"type": "retweeted", "id": "900"}],
    )
    [post] = parse_payload(_stream(retweet))
    assert (post.kind, post.ref_post_id, post.arxiv_ids) == ("repost", "900", ())


def test_x2_quote_adds_papers_of_the_quoted_post() -> None:
    quoted = _x2_tweet("800", entities={"urls": [_tco("https://arxiv.org/abs/hep-th/9711200")]})
    quote = _x2_tweet("801", referenced_tweets=[{"type": "quoted", "id": "800"}])
    [post] = parse_payload(_stream(quote, {"tweets": [quoted]}))
    assert post.kind == "quote"
    assert post.ref_post_id == "800"
    assert post.arxiv_ids == ("2401.12345", "hep-th/9711200")
    assert post.links == (ARXIV,)  # its own links only
    assert post.author_handle is None  # no users in includes


def test_x2_quote_whose_quoted_post_is_missing() -> None:
    quote = _x2_tweet("801", referenced_tweets=[{"type": "quoted", "id": "800"}])
    [post] = parse_payload(_stream(quote))
    assert (post.kind, post.ref_post_id, post.arxiv_ids) == ("quote", "800", ("2401.12345",))


def test_x2_reply_does_not_inherit_parent_papers() -> None:
    parent = _x2_tweet("700", entities={"urls": [_tco("https://arxiv.org/abs/1602.02410")]})
    reply = _x2_tweet("701", entities={}, referenced_tweets=[{"type": "replied_to", "id": "700"}])
    [post] = parse_payload(_stream(reply, {"tweets": [parent]}))
    assert (post.kind, post.ref_post_id, post.arxiv_ids) == ("reply", None, ())


def test_x2_quote_and_reply_is_a_quote() -> None:
    tweet = _x2_tweet(
        "5",
        referenced_tweets=[{"type": "replied_to", "id": "3"}, {"type": "quoted", "id": "4"}],
    )
    [post] = parse_payload(_stream(tweet))
    assert (post.kind, post.ref_post_id) == ("quote", "4")


def test_x2_long_post_uses_note_tweet() -> None:
    full = "A long thread opener " * 20 + "see arXiv:2403.00001 and https://t.co/zzz"
    tweet = _x2_tweet(
        text=full[:270] + "\u2026",
        entities={"urls": []},
        note_tweet={
            "text": full,
            "entities": {"urls": [_tco("https://alphaxiv.org/abs/2404.00002")]},
        },
    )
    [post] = parse_payload(_stream(tweet))
    assert post.text == full
    assert post.arxiv_ids == ("2403.00001", "2404.00002")
    assert post.links == ("https://alphaxiv.org/abs/2404.00002",)


def test_x2_traps_give_no_ids() -> None:
    tweet = _x2_tweet(
        text="arxiv.org/abs/2401.1\u2026 biorxiv and code",
        entities={
            "urls": [
                _tco("https://www.biorxiv.org/content/10.1101/2024.01.12.575432v1"),
                _tco("https://github.com/org/repo"),
                _tco("https://www.youtube.com/watch?v=abc"),
                _tco("https://arxiv.org/list/cs.LG/recent"),
                _tco("https://arxiv.org/abs/2413.12345"),
            ]
        },
    )
    [post] = parse_payload(_stream(tweet))
    assert post.arxiv_ids == ()
    assert len(post.links) == 5


def test_x2_same_paper_twice_is_one_id() -> None:
    tweet = _x2_tweet(
        text="arXiv:2401.12345 https://t.co/a https://t.co/b",
        entities={
            "urls": [
                _tco("https://arxiv.org/abs/2401.12345v1"),
                _tco("https://arxiv.org/pdf/2401.12345v2.pdf"),
            ]
        },
    )
    [post] = parse_payload(_stream(tweet))
    assert post.arxiv_ids == ("2401.12345",)


def test_x2_minimal_default_fields() -> None:
    [post] = parse_payload({"data": {"id": "20", "text": "just setting up my twttr"}})
    assert (post.post_id, post.author_id, post.created_at, post.links) == ("20", None, None, ())


# ---------------------------------------------------------------------------------
# X API v1.1
# ---------------------------------------------------------------------------------


def _v1(sid: str = "266367358078169089", **extra: Any) -> dict[str, Any]:
    status = {
        "created_at": "Thu Nov 08 01:43:59 +0000 2012",
        "id": int(sid),
        "id_str": sid,
        "text": "paper http://t.co/abc",
        "truncated": False,
        "entities": {"urls": [{"url": "http://t.co/abc", "expanded_url": ARXIV}]},
        "user": {"id": 7, "id_str": "7", "screen_name": "carol"},
    }
    status.update(extra)
    return status


def test_v1_status() -> None:
    [post] = parse_payload(_v1())
    assert post.post_id == "266367358078169089"
    assert post.created_at == datetime(2012, 11, 8, 1, 43, 59, tzinfo=UTC)
    assert (post.author_id, post.author_handle) == ("7", "carol")
    assert (post.kind, post.arxiv_ids) == ("post", ("2401.12345",))


def test_v1_extended_tweet() -> None:
    status = _v1(
        truncated=True,
        text="short\u2026",
        entities={"urls": []},
        extended_tweet={
            "full_text": "long text with arXiv:1602.02410",
            "entities": {"urls": [{"expanded_url": "https://scirate.com/arxiv/2501.00009"}]},
        },
    )
    [post] = parse_payload(status)
    assert post.text == "long text with arXiv:1602.02410"
    assert post.arxiv_ids == ("1602.02410", "2501.00009")


def test_v1_retweet_and_quote() -> None:
    original = _v1("1", entities={"urls": [{"expanded_url": "https://arxiv.org/abs/1602.02410"}]})
    retweet = _v1("2", text="RT @x: \u2026", entities={"urls": []}, retweeted_status=original)
    [rt] = parse_payload(retweet)
    assert (rt.kind, rt.ref_post_id, rt.arxiv_ids) == ("repost", "1", ("1602.02410",))
    quote = _v1("3", quoted_status=original, is_quote_status=True)
    [q] = parse_payload(quote)
    assert (q.kind, q.ref_post_id, q.arxiv_ids) == ("quote", "1", ("1602.02410", "2401.12345"))


def test_v1_search_page_and_plain_array() -> None:
    statuses = [_v1("1"), _v1("2", in_reply_to_status_id_str="1")]
    page = parse_payload({"statuses": statuses, "search_metadata": {"count": 2}})
    assert [(p.post_id, p.kind) for p in page] == [("1", "post"), ("2", "reply")]
    assert parse_payload(statuses) == page
    assert parse_payload({"statuses": [], "search_metadata": {}}) == []


# ---------------------------------------------------------------------------------
# Bluesky Jetstream
# ---------------------------------------------------------------------------------

DID = "did:plc:q235v55g5unth4zjjdpacfdr"


def _jet(collection: str, record: dict[str, Any] | None, operation: str = "create") -> dict:
    commit: dict[str, Any] = {
        "rev": "3mmoojpaqkn2z",
        "operation": operation,
        "collection": collection,
        "rkey": "3mmoojp4cd223",
    }
    if record is not None:
        commit["record"] = record
        commit["cid"] = "bafyreicl7rzkxdrm4zz2ehbx52kuk3mvfow6p3gzfys72r5grvskxoswy4"
    return {"did": DID, "time_us": 1779719009157119, "kind": "commit", "commit": commit}


def _bsky_post(**extra: Any) -> dict[str, Any]:
    record = {
        "$type": "app.bsky.feed.post",
        "createdAt": "2026-05-25T14:23:28.757Z",
        "langs": ["en"],
        "text": "New: arxiv.org/abs/2401.1...",
        "facets": [
            {
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": ARXIV}],
                "index": {"byteStart": 5, "byteEnd": 28},
            },
            {
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "ml"}],
                "index": {"byteStart": 0, "byteEnd": 3},
            },
        ],
    }
    record.update(extra)
    return _jet("app.bsky.feed.post", record)


def test_bluesky_post_with_facet_link() -> None:
    [post] = parse_payload(_bsky_post())
    assert post.post_id == f"at://{DID}/app.bsky.feed.post/3mmoojp4cd223"
    assert (post.source, post.kind, post.author_id) == ("bluesky", "post", DID)
    assert post.created_at == datetime(2026, 5, 25, 14, 23, 28, 757000, tzinfo=UTC)
    assert post.links == (ARXIV,)
    assert post.arxiv_ids == ("2401.12345",)


def test_bluesky_truncated_display_text_alone_gives_nothing() -> None:
    [post] = parse_payload(_bsky_post(facets=[]))
    assert post.arxiv_ids == ()


def test_bluesky_external_embed_and_record_with_media() -> None:
    external = {
        "$type": "app.bsky.embed.external",
        "external": {"uri": "https://huggingface.co/papers/2501.00001", "title": "t"},
    }
    [post] = parse_payload(_bsky_post(facets=[], embed=external))
    assert post.arxiv_ids == ("2501.00001",)
    with_media = {
        "$type": "app.bsky.embed.recordWithMedia",
        "media": {
            "$type": "app.bsky.embed.external",
            "external": {"uri": "https://ar5iv.org/abs/1602.02410"},
        },
        "record": {
            "$type": "app.bsky.embed.record",
            "record": {"uri": "at://did:plc:x/app.bsky.feed.post/abc", "cid": "bafy"},
        },
    }
    [post] = parse_payload(_bsky_post(facets=[], embed=with_media))
    assert (post.kind, post.ref_post_id) == ("quote", "at://did:plc:x/app.bsky.feed.post/abc")
    assert post.arxiv_ids == ("1602.02410",)


def test_bluesky_quote_via_embed_record() -> None:
    embed = {
        "$type": "app.bsky.embed.record",
        "record": {"uri": "at://did:plc:y/app.bsky.feed.post/q1", "cid": "bafy"},
    }
    [post] = parse_payload(_bsky_post(embed=embed))
    assert (post.kind, post.ref_post_id) == ("quote", "at://did:plc:y/app.bsky.feed.post/q1")
    assert post.arxiv_ids == ("2401.12345",)  # own links; the quoted post is not in the event


def test_bluesky_reply() -> None:
    reply = {
        "parent": {"uri": "at://did:plc:p/app.bsky.feed.post/1", "cid": "b"},
        "root": {"uri": "at://did:plc:p/app.bsky.feed.post/1", "cid": "b"},
    }
    [post] = parse_payload(_bsky_post(reply=reply))
    assert (post.kind, post.ref_post_id) == ("reply", None)


def test_bluesky_created_at_falls_back_to_time_us() -> None:
    event = _bsky_post()
    del event["commit"]["record"]["createdAt"]
    [post] = parse_payload(event)
    assert post.created_at == datetime.fromtimestamp(1779719009.157119, UTC)
    event["commit"]["record"]["createdAt"] = "not a date"
    assert parse_payload(event)[0].created_at == post.created_at


def test_bluesky_repost_has_subject_and_no_ids() -> None:
    subject = {"uri": "at://did:plc:h/app.bsky.feed.post/3mmood3a6hc25", "cid": "bafy"}
    record = {
        "$type": "app.bsky.feed.repost",
        "createdAt": "2026-05-25T14:23:27.388Z",
        "subject": subject,
    }
    [post] = parse_payload(_jet("app.bsky.feed.repost", record))
    assert post.post_id == f"at://{DID}/app.bsky.feed.repost/3mmoojp4cd223"
    assert (post.kind, post.ref_post_id, post.arxiv_ids) == ("repost", subject["uri"], ())


@pytest.mark.parametrize("collection", ["app.bsky.feed.post", "app.bsky.feed.repost"])
def test_bluesky_delete(collection: str) -> None:
    [post] = parse_payload(_jet(collection, None, operation="delete"))
    uri = f"at://{DID}/{collection}/3mmoojp4cd223"
    assert (post.kind, post.post_id, post.ref_post_id) == ("delete", uri, uri)
    assert post.created_at == datetime.fromtimestamp(1779719009.157119, UTC)


@pytest.mark.parametrize(
    "event",
    [
        _jet("app.bsky.feed.like", {"subject": {"uri": "at://x", "cid": "y"}}),
        _jet("app.bsky.graph.follow", {"subject": "did:plc:z"}),
        _jet("app.bsky.graph.follow", None, operation="delete"),
        _jet("app.bsky.actor.profile", {"displayName": "x"}, operation="update"),
        {"did": DID, "time_us": 1, "kind": "identity", "identity": {"did": DID}},
        {"did": DID, "time_us": 1, "kind": "account", "account": {"active": True}},
    ],
)
def test_bluesky_non_post_events_give_nothing(event: dict[str, Any]) -> None:
    assert parse_payload(event) == []


# ---------------------------------------------------------------------------------
# Mastodon
# ---------------------------------------------------------------------------------


def _toot(**extra: Any) -> dict[str, Any]:
    status = {
        "id": "1",
        "uri": "https://mastodon.social/users/dan/statuses/1",
        "created_at": "2026-08-01T13:53:10.824Z",
        "content": (
            '<p>Read <a href="https://arxiv.org/abs/2401.12345v2" rel="nofollow noopener">'
            '<span class="invisible">https://</span><span class="ellipsis">arxiv.org/abs/2401.1'
            '</span><span class="invisible">2345v2</span></a> &amp; enjoy</p>'
        ),
        "account": {"id": "9", "acct": "dan@mastodon.social"},
        "reblog": None,
        "card": None,
        "in_reply_to_id": None,
    }
    status.update(extra)
    return status


def test_mastodon_status_html_content() -> None:
    [post] = parse_payload(_toot())
    assert post.post_id == "https://mastodon.social/users/dan/statuses/1"
    assert (post.source, post.kind, post.author_id) == ("mastodon", "post", "9")
    assert post.author_handle == "dan@mastodon.social"
    assert post.text == "Read https://arxiv.org/abs/2401.12345v2 & enjoy"
    assert post.links == ("https://arxiv.org/abs/2401.12345v2",)
    assert post.arxiv_ids == ("2401.12345",)


def test_mastodon_card_url() -> None:
    [post] = parse_payload(
        _toot(content="<p>wow</p>", card={"url": "https://www.alphaxiv.org/overview/2501.00003"})
    )
    assert post.arxiv_ids == ("2501.00003",)


def test_mastodon_reblog_and_quote() -> None:
    inner = _toot()
    wrapper = _toot(
        uri="https://x.social/users/e/statuses/2/activity", content="", reblog=copy.deepcopy(inner)
    )
    [rb] = parse_payload(wrapper)
    assert (rb.kind, rb.ref_post_id, rb.arxiv_ids) == ("repost", inner["uri"], ("2401.12345",))
    quote = _toot(
        uri="https://x.social/users/e/statuses/3",
        content="<p>RE: this</p>",
        quote={"state": "accepted", "quoted_status": inner},
    )
    [q] = parse_payload(quote)
    assert (q.kind, q.ref_post_id, q.arxiv_ids) == ("quote", inner["uri"], ("2401.12345",))


def test_mastodon_streaming_websocket_message() -> None:
    msg = {"stream": ["public"], "event": "update", "payload": json.dumps(_toot())}
    [post] = parse_payload(msg)
    assert post.arxiv_ids == ("2401.12345",)
    assert parse_payload({"stream": ["public"], "event": "delete", "payload": "1"}) == []


# ---------------------------------------------------------------------------------
# JSON output and bad input
# ---------------------------------------------------------------------------------


def test_to_json_dict() -> None:
    [post] = parse_payload(_stream(_x2_tweet()))
    d = post.to_json_dict()
    assert d["created_at"] == "2024-01-22T10:11:12Z"
    assert d["arxiv_ids"] == ["2401.12345"]
    assert d["links"] == [ARXIV]
    assert json.loads(json.dumps(d)) == d
    assert set(d) >= {"post_id", "source", "kind", "author_id", "created_at", "arxiv_ids"}
    assert dataclasses.replace(post, created_at=None).to_json_dict()["created_at"] is None


def test_post_is_frozen() -> None:
    [post] = parse_payload(_stream(_x2_tweet()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        post.kind = "repost"  # type: ignore[misc]


def test_parse_line_accepts_str_and_bytes() -> None:
    line = json.dumps(_stream(_x2_tweet()))
    assert parse_line(line) == parse_line(line.encode()) == parse_payload(json.loads(line))


@pytest.mark.parametrize("line", [123, None, ["{}"], 1.5])
def test_parse_line_wrong_type(line: object) -> None:
    with pytest.raises(PostParseError, match="expected a str or bytes line"):
        parse_line(line)  # type: ignore[arg-type]


def test_parse_line_lone_surrogate_escape_is_accepted() -> None:
    line = json.dumps(_stream(_x2_tweet(text="cut emoji \ud83c")))
    [post] = parse_line(line.encode())
    # Accepted, with the lone surrogate replaced: Faust's changelog (orjson) and
    # Elasticsearch need valid UTF-8 (a kept surrogate crashed the ledger agent).
    assert post.text.endswith("\ufffd")
    post.text.encode("utf-8")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty line"),
        (b"   \n", "empty line"),
        (b"Rate limit exceeded\n", "invalid JSON"),
        (b'{"data": {"author_id": "1021159080151404544"', "truncated"),
        (b'{"data": {"id": "1", "text": "\xff\xfe"}}', "invalid UTF-8"),
        (b"[1, 2]", "array item 0"),
        (b'"just a string"', "expected a JSON object"),
        (b"42", "expected a JSON object"),
        (b"null", "expected a JSON object"),
        (b'{"hello": "world"}', "unrecognised payload"),
        (b"{}", "unrecognised payload"),
    ],
)
def test_parse_line_bad_input(line: bytes, reason: str) -> None:
    with pytest.raises(PostParseError, match=reason):
        parse_line(line)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"data": "nope"}, "X v2 'data'"),
        ({"data": [1, 2]}, r"data\[0\]"),
        ({"data": {"text": "no id"}}, "X tweet 'id'"),
        ({"data": {"id": "1", "text": 5}}, "X tweet 'text'"),
        ({"data": {"id": "1", "entities": {"urls": "x"}}}, "must be an array"),
        ({"did": "d", "kind": "commit", "commit": "x"}, "Jetstream 'commit'"),
        ({"did": "d", "kind": "weird"}, "unknown Bluesky Jetstream event kind"),
        (
            {"did": "d", "kind": "commit", "commit": {"collection": "app.bsky.feed.post"}},
            "rkey",
        ),
        (
            {
                "did": "d",
                "kind": "commit",
                "commit": {"collection": "app.bsky.feed.post", "rkey": "r", "operation": "x"},
            },
            "operation",
        ),
        (
            {
                "did": "d",
                "kind": "commit",
                "commit": {
                    "collection": "app.bsky.feed.repost",
                    "rkey": "r",
                    "operation": "create",
                    "record": {"subject": "nope"},
                },
            },
            "subject",
        ),
        ({"uri": 5, "content": "", "account": {}}, "Mastodon status 'uri'"),
        ({"uri": "u", "content": ["x"], "account": {}}, "Mastodon status 'content'"),
        ({"statuses": [{"foo": 1}]}, "array item 0"),
        ({"event": "update", "payload": "{not json"}, "invalid JSON"),
        ({"id_str": None, "user": {}, "text": "x"}, "id_str"),
        ({"id_str": "1", "user": {}, "text": "x", "entities": {"urls": {"a": 1}}}, "array"),
    ],
)
def test_wrong_types_raise_post_parse_error(payload: object, reason: str) -> None:
    with pytest.raises(PostParseError, match=reason):
        parse_payload(payload)


def test_parse_payload_never_raises_other_exceptions() -> None:
    """Corrupt every value of a real-shaped payload in turn: only PostParseError escapes."""
    samples: list[Any] = [
        _stream(_x2_tweet(referenced_tweets=[{"type": "quoted", "id": "9"}])),
        _bsky_post(embed={"$type": "app.bsky.embed.record", "record": {"uri": "at://a"}}),
        _toot(reblog=_toot()),
        _v1(retweeted_status=_v1("5")),
    ]
    bad_values: list[Any] = [None, 1, "x", [], {}, [1], [None], {"a": None}, True, 1.5]

    def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        out = [prefix] if prefix else []
        if isinstance(obj, dict):
            for k, v in obj.items():
                out += paths(v, (*prefix, k))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                out += paths(v, (*prefix, i))
        return out

    checked = 0
    for sample in samples:
        for path in paths(sample):
            for bad in bad_values:
                obj = copy.deepcopy(sample)
                holder = obj
                for key in path[:-1]:
                    holder = holder[key]
                holder[path[-1]] = bad
                try:
                    result = parse_payload(obj)
                except PostParseError as exc:
                    assert str(exc)
                else:
                    assert all(isinstance(p, NormalizedPost) for p in result)
                checked += 1
    assert checked > 500


# ---------------------------------------------------------------------------------
# The typed fast path (msgspec) gives exactly what the general path gives
# ---------------------------------------------------------------------------------

BENCH_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_extract.py"


def _bench_module() -> ModuleType:
    """bench/bench_extract.py (a script, not a package): its corpus generators."""
    name = "trending_bench_extract"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCH_SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look the module up here
        spec.loader.exec_module(module)
    return sys.modules[name]


def _general(line: bytes | str) -> list[NormalizedPost] | str:
    """The general path alone (orjson/stdlib + dict walking); an error as its message."""
    try:
        return parse_payload(posts_module._decode(line))
    except PostParseError as exc:
        return f"error: {exc}"


def _via_parse_line(line: bytes | str) -> list[NormalizedPost] | str:
    try:
        return parse_line(line)
    except PostParseError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("corpus", ["arxiv", "mixed"])
def test_fast_path_equals_general_path_on_the_bench_corpora(corpus: str) -> None:
    bench = _bench_module()
    lines = [post.line for post in bench.CORPORA[corpus](1500, 7)]
    fast_count = 0
    for line in lines:
        fast = posts_module._fast_parse(line)
        assert fast is not None, line[:200]  # these shapes never need the general path
        fast_count += len(fast)
        assert fast == _general(line), line[:200]
        text = line.decode()
        assert posts_module._fast_parse(text) == fast
    assert fast_count > 1000
    # The mixed corpus exercises every kind the fast path builds.
    kinds = {p.kind for line in lines for p in parse_line(line)}
    assert kinds == ({"post"} if corpus == "arxiv" else {"post", "reply", "repost", "delete"})


def test_fast_path_posts_are_real_frozen_normalized_posts() -> None:
    line = json.dumps({"data": _x2_tweet()}).encode()
    [fast] = posts_module._fast_parse(line) or []
    [general] = parse_payload(json.loads(line))
    assert type(fast) is NormalizedPost
    assert fast == general and hash(fast) == hash(general)
    assert dataclasses.astuple(fast) == dataclasses.astuple(general)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.kind = "quote"  # type: ignore[misc]


JETSTREAM_POST = {
    "did": "did:plc:abc",
    "time_us": 1_725_000_000_000_000,
    "kind": "commit",
    "commit": {
        "rev": "3l",
        "operation": "create",
        "collection": "app.bsky.feed.post",
        "rkey": "3kxyz",
        "record": {
            "$type": "app.bsky.feed.post",
            "createdAt": "2024-09-01T10:00:00.000Z",
            "text": "read this arxiv.org/abs/2401.1...",
            "facets": [{"features": [{"$type": "app.bsky.richtext.facet#link", "uri": ARXIV}]}],
            "embed": {
                "$type": "app.bsky.embed.recordWithMedia",
                "record": {"record": {"uri": "at://did:plc:q/app.bsky.feed.post/1", "cid": "c"}},
                "media": {"external": {"uri": "https://alphaxiv.org/abs/2312.00001"}},
            },
        },
        "cid": "bafy",
    },
}
X_STREAM = {
    "data": _x2_tweet(
        "200",
        referenced_tweets=[{"type": "quoted", "id": "100"}],
        note_tweet={"text": "long arXiv:1706.03762", "entities": {"urls": [_tco(ARXIV)]}},
    ),
    "includes": {"users": [{"id": "42", "username": "al"}], "tweets": [_x2_tweet("100")]},
    "matching_rules": [{"id": "1", "tag": "arxiv"}],
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replaced(v, rest, new) if k == head else v) for k, v in value.items()}
    return [(_replaced(v, rest, new) if i == head else v) for i, v in enumerate(value)]


ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.sampled_from(["", "x", "delete", "update", "retweeted", "quoted", "replied_to", "0"]),
    st.sampled_from(["app.bsky.feed.repost", "identity", "commit", "2024-01-01T00:00:00+02:00"]),
    st.just({}),
    st.just([]),
    st.just([{}]),
    st.just({"uri": ""}),
    st.just({"uri": ARXIV}),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([JETSTREAM_POST, X_STREAM]), st.data())
def test_fast_path_agrees_with_the_general_path_on_any_one_field_change(
    document: dict[str, Any], data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(_paths(document)))
    mutated = _replaced(document, path, data.draw(ODD_VALUES))
    line = json.dumps(mutated).encode()
    assert _via_parse_line(line) == _general(line)
    if isinstance(mutated, dict) and path and path[-1] not in ("commit", "data"):
        # Also with the key removed altogether.
        parent = mutated
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict):
            del parent[path[-1]]
            line = json.dumps(mutated).encode()
            assert _via_parse_line(line) == _general(line)


@pytest.mark.parametrize(
    "line",
    [
        # Invalid UTF-8 in a field the typed decoder skips: still an error.
        b'{"data":{"id":"1","text":"x"},"junk":"\xff"}',
        # An integer past Python's digit limit in a skipped field: still an error.
        b'{"data":{"id":"1","text":"x"},"n":-1' + b"0" * 5_000 + b"}",
        b'{"did":"d","kind":"commit","n":' + b"9" * 4_400 + b',"commit":{}}',
        # Nesting too deep in a skipped field.
        b'{"data":{"id":"1","text":"x"},"n":' + b"[" * 3_000 + b"]" * 3_000 + b"}",
    ],
    ids=["invalid-utf8", "5000-digit-int", "4400-digit-int", "deep-nesting"],
)
def test_what_the_general_path_rejects_the_fast_path_does_not_accept(line: bytes) -> None:
    with pytest.raises(PostParseError):
        parse_line(line)


def test_long_lines_with_ordinary_numbers_still_take_the_fast_path() -> None:
    tweets = [_x2_tweet(str(10**18 + i)) for i in range(60)]
    line = json.dumps({"data": tweets, "meta": {"result_count": 60}}).encode()
    assert len(line) > 4_300
    fast = posts_module._fast_parse(line)
    assert fast is not None and len(fast) == 60
    assert fast == parse_payload(json.loads(line))


@pytest.mark.parametrize(
    "document",
    [
        {"data": {"id": 100, "text": "arXiv:1706.03762", "author_id": 7}},  # int IDs
        {"data": None, "errors": [{"title": "Not Found Error"}]},
        {"data": {"id": "1", "text": None, "note_tweet": {}}},
        {"did": "d", "kind": "identity", "identity": {"handle": "x"}},
        {"did": "d", "kind": "commit", "commit": {"collection": "app.bsky.feed.like"}},
        JETSTREAM_POST | {"time_us": True},
    ],
    ids=["int-ids", "errors-only", "null-text", "identity", "like", "bool-time"],
)
def test_unusual_but_valid_shapes_give_the_general_answer(document: dict[str, Any]) -> None:
    line = json.dumps(document).encode()
    assert parse_line(line) == parse_payload(json.loads(line))


def _jetstream_commit(collection: str, record: Any, operation: str = "create") -> bytes:
    commit = {"operation": operation, "collection": collection, "rkey": "3k", "record": record}
    return json.dumps(
        {"did": "did:plc:a", "time_us": 1, "kind": "commit", "commit": commit}
    ).encode()


@pytest.mark.parametrize(
    "line",
    [
        # Follows and blocks name their subject by DID: still decoded on the fast path.
        _jetstream_commit("app.bsky.graph.follow", {"subject": "did:plc:b", "createdAt": "x"}),
        _jetstream_commit("app.bsky.feed.like", {"subject": {"uri": "at://x", "cid": "c"}}),
    ],
    ids=["follow", "like"],
)
def test_fast_path_skips_other_lexicons_without_the_general_path(line: bytes) -> None:
    assert posts_module._fast_parse(line) == []
    assert parse_line(line) == parse_payload(json.loads(line)) == []


@pytest.mark.parametrize(
    "record",
    [
        {"subject": "at://did:plc:b/app.bsky.feed.post/1"},  # a string, not a strongRef
        {"subject": {"cid": "c"}},
        {"subject": {"uri": ""}},
        {"text": 5, "subject": {"uri": "at://x"}},  # odd post fields on a repost
        None,
    ],
)
def test_repost_records_the_fast_path_cannot_take(record: Any) -> None:
    line = _jetstream_commit("app.bsky.feed.repost", record)
    assert _via_parse_line(line) == _general(line)


def test_fast_post_builder_gives_the_same_frozen_post_as_the_constructor() -> None:
    when = datetime(2024, 1, 2, tzinfo=UTC)
    args = ("p", "x", "post", "a", "h", when, "t", ("l",), ("2401.12345",), None)
    built = posts_module._post(*args)
    assert type(built) is NormalizedPost
    assert built == NormalizedPost(*args)
    assert hash(built) == hash(NormalizedPost(*args))
    assert dataclasses.astuple(built) == args
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.text = "changed"  # type: ignore[misc]


JETSTREAM_REPOST = {
    "did": "did:plc:abc",
    "time_us": 1_725_000_000_000_000,
    "kind": "commit",
    "commit": {
        "rev": "3l",
        "operation": "create",
        "collection": "app.bsky.feed.repost",
        "rkey": "3krp",
        "record": {
            "$type": "app.bsky.feed.repost",
            "createdAt": "2024-09-01T10:00:00.000Z",
            "subject": {"uri": "at://did:plc:q/app.bsky.feed.post/1", "cid": "c"},
        },
        "cid": "bafy",
    },
}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fast_path_agrees_with_the_general_path_on_repost_changes(data: st.DataObject) -> None:
    # Post and repost records share one typed decoder: a repost's odd fields must
    # still give the general answer.
    path = data.draw(st.sampled_from(_paths(JETSTREAM_REPOST)))
    mutated = _replaced(JETSTREAM_REPOST, path, data.draw(ODD_VALUES))
    line = json.dumps(mutated).encode()
    assert _via_parse_line(line) == _general(line)
