"""Hostile input at unit level: `parse_line` raises only `PostParseError`, and the
producers' keying (`key_of`) never raises, whatever the bytes or JSON."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.keys import key_of
from tests.hostile.corpus import fuzz_corpus
from trending_arxiv.core.posts import NormalizedPost, PostParseError, parse_line
from trending_arxiv.core.simulate import simulate
from trending_arxiv.demo import bundled_sample_path

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEED_LINES = [line for line in bundled_sample_path().read_bytes().splitlines() if line.strip()][:40]
# Keys every parser branch looks at, so generated objects reach deep into the dispatch.
KEYS = [
    "data", "id", "text", "author_id", "created_at", "entities", "urls", "expanded_url",
    "unwound_url", "note_tweet", "referenced_tweets", "type", "includes", "users", "tweets",
    "username", "errors", "meta", "did", "kind", "time_us", "commit", "operation",
    "collection", "rkey", "record", "createdAt", "facets", "features", "$type", "uri",
    "embed", "external", "media", "subject", "reply", "content", "account", "acct",
    "reblog", "quote", "quoted_status", "card", "url", "in_reply_to_id", "statuses",
    "id_str", "full_text", "retweeted_status", "quoted_status", "user", "screen_name",
    "event", "payload", "extended_tweet",
]  # fmt: skip
STRINGS = st.one_of(
    st.sampled_from(
        [
            "commit", "create", "delete", "update", "app.bsky.feed.post", "app.bsky.feed.repost",
            "app.bsky.richtext.facet#link", "retweeted", "quoted", "replied_to", "status.update",
            "https://arxiv.org/abs/2401.12345v2", "arXiv:1706.03762", "at://did:plc:x/a/b",
            "2024-01-22T10:11:12.000Z", "Mon Jan 22 10:11:12 +0000 2024", "",
            "https://api.twitter.com/2/problems/x", "<a href=\"https://arxiv.org/abs/1\">x</a>",
            "\ud800", "arXiv:2401.00001 \udfff", "\ud83d\ude00",
        ]
    ),
    st.text(max_size=40),
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    STRINGS,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=6
        ),
    ),
    max_leaves=40,
)


def _only_parse_errors(line: bytes | str) -> list[NormalizedPost] | None:
    """parse_line's result, None for a PostParseError; any other exception fails the test."""
    try:
        posts = parse_line(line)
    except PostParseError as error:
        assert str(error), "a PostParseError must say why"
        return None
    assert isinstance(posts, list)
    for post in posts:
        assert isinstance(post, NormalizedPost)
        # Downstream encoders (Faust's changelog, Elasticsearch) need valid UTF-8.
        json.dumps(post.to_json_dict(), ensure_ascii=False).encode("utf-8")
    return posts


def _key_never_raises(line: bytes | str) -> None:
    found = key_of(line)
    assert found.key is None or isinstance(found.key, str)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_posts_or_a_parse_error(raw: bytes) -> None:
    _only_parse_errors(raw)
    _key_never_raises(raw)


@FUZZ
@given(JSON_VALUES)
def test_arbitrary_json_gives_posts_or_a_parse_error(value: Any) -> None:
    line = json.dumps(value)
    _only_parse_errors(line.encode())
    _only_parse_errors(line)
    _key_never_raises(line.encode())


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replace(v, rest, new) if k == head else v) for k, v in value.items()}
    return [(_replace(v, rest, new) if i == head else v) for i, v in enumerate(value)]


@FUZZ
@given(st.sampled_from(SEED_LINES), st.data())
def test_real_shaped_posts_with_one_field_replaced_give_posts_or_a_parse_error(
    line: bytes, data: st.DataObject
) -> None:
    document = json.loads(line)
    path = data.draw(st.sampled_from(_paths(document)))
    mutated = _replace(document, path, data.draw(JSON_VALUES))
    raw = json.dumps(mutated).encode()
    _only_parse_errors(raw)
    _key_never_raises(raw)


@FUZZ
@given(st.sampled_from(SEED_LINES), st.data())
def test_real_shaped_posts_cut_or_corrupted_give_posts_or_a_parse_error(
    line: bytes, data: st.DataObject
) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(line)))
    junk = data.draw(st.binary(max_size=4))
    for raw in (line[:at], line[:at] + junk + line[at:]):
        _only_parse_errors(raw)
        _key_never_raises(raw)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="100k-nested-arrays"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="50k-nested-objects"),
        pytest.param(
            b'{"data":{"id":"1","text":"arXiv:2401.00001","entities":'
            + b"[" * 5_000
            + b"]" * 5_000
            + b"}}",
            id="deep-field-in-a-tweet",
        ),
        pytest.param(
            b'{"event":"update","payload":"' + b"[" * 5_000 + b'"}', id="deep-mastodon-payload"
        ),
        pytest.param(b'{"data":{"id":1' + b"0" * 5_000 + b',"text":"x"}}', id="5000-digit-id"),
        pytest.param(b"1" + b"0" * 5_000, id="5000-digit-number"),
        pytest.param(
            b'{"uri":"u","content":"c","account":{"id":1' + b"0" * 5_000 + b"}}",
            id="5000-digit-mastodon-account",
        ),
        pytest.param(b'{"data":{"id":"1","text":"x"},"n":-1' + b"0" * 9_000 + b"}", id="neg-int"),
    ],
)
def test_pathological_json_is_a_parse_error_not_a_crash(raw: bytes) -> None:
    assert _only_parse_errors(raw) is None
    found = key_of(raw)  # the producer sends it on, unkeyed, for the stream to dead-letter
    assert found.key is None


def test_utf8_encoded_surrogate_is_a_parse_error_and_its_key_still_encodes() -> None:
    raw = b'{"data":{"id":"7\xed\xa0\x80","text":"arXiv:2401.00001"}}'
    assert _only_parse_errors(raw) is None
    key = key_of(raw).key  # the stdlib decodes bytes with surrogatepass
    assert key is not None and "\ud800" in key
    # What RawPostWriter.send does with it (it raised UnicodeEncodeError before).
    assert key.encode("utf-8", "surrogatepass") == b"7\xed\xa0\x80"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"data":{"id":"1","text":"\\ud800 arXiv:2401.00001"}}',
        b'{"data":{"id":"\\udfff","text":"arXiv:2401.00001"}}',
        b'{"uri":"u\\ud800","content":"arXiv:2401.00001 \\udc00","account":{"acct":"\\ud800"}}',
        b'{"did":"did:plc:\\ud800","kind":"commit","commit":{"operation":"create",'
        b'"collection":"app.bsky.feed.post","rkey":"r",'
        b'"record":{"text":"\\ud800 arXiv:2401.00001"}}}',
    ],
)
def test_lone_surrogate_escapes_are_replaced_so_posts_encode_as_utf8(raw: bytes) -> None:
    posts = _only_parse_errors(raw)  # checks every field encodes as UTF-8
    assert posts and posts[0].arxiv_ids == ("2401.00001",)
    assert "\ufffd" in json.dumps(posts[0].to_json_dict(), ensure_ascii=False)


def test_every_bad_corpus_line_is_a_parse_error_and_every_good_one_parses() -> None:
    corpus = fuzz_corpus().generate(total=3_000, seed=11)
    wrong = Counter(
        (line.category, line.bad)
        for line in corpus
        if (_only_parse_errors(line.raw) is None) != line.bad
    )
    assert not wrong, f"labels and parser disagree: {wrong}"
    reference = simulate(line.raw for line in corpus)
    assert len(reference.dead_letters) == sum(line.bad for line in corpus)
    assert reference.counts, "the good lines name papers"
    categories = {line.category for line in corpus}
    assert {"truncated", "wrong-type", "invalid-utf8", "unknown-source", "deep-nesting"} <= (
        categories
    )
