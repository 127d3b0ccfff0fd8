"""Unit tests of the producers' pure parts, on the recorded real payloads."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from producers.bluesky import event_identity, subscribe_url
from producers.checkpoint import AckTracker, CheckpointFile
from producers.keys import PayloadKey, key_of, key_of_document
from producers.mastodon import iter_sse
from producers.prefilter import jetstream_event_passes, mentions_arxiv
from producers.replay import ReplayInputError, expand_inputs, iter_records
from producers.settings import BlueskyProducerSettings, MastodonProducerSettings, XProducerSettings
from producers.x_api import (
    StreamBackoff,
    XConfigError,
    arxiv_url_clause,
    batch_from_rules,
    created_at_epoch,
    rate_limit_wait,
    rule_tag,
)
from tests.fakes.paths import REAL_FIXTURES
from tests.unit.test_ids import URLS

STREAM = REAL_FIXTURES / "x_v2_twarc_filtered_stream_with_truncated_line.jsonl"
CORPUS = REAL_FIXTURES / "bsky_jetstream_v1_corpus_window.jsonl"
GOLDEN = REAL_FIXTURES / "bsky_jetstream_v1_golden_events.jsonl"


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


# -- keys ----------------------------------------------------------------------------------


def test_stream_lines_are_keyed_by_tweet_id_and_truncated_line_is_unparseable() -> None:
    lines = _lines(STREAM)
    keys = [key_of(line) for line in lines]
    assert [k.key for k in keys[:7]] == [json.loads(line)["data"]["id"] for line in lines[:7]]
    assert {k.source for k in keys[:7]} == {"x"}
    assert keys[7].key is None and not keys[7].parseable and keys[7].reason == "invalid JSON"


@pytest.mark.parametrize(
    "name",
    [
        "x_v2_twarc_search_recent_brexit.jsonl",
        "x_v2_tweepy_search_recent_tweets.json",
        "x_v2_postman_multiple_tweets_partial_error.json",
        "x_v2_tweepy_get_tweet.json",
    ],
)
def test_v2_pages_are_keyed_by_their_first_tweet(name: str) -> None:
    doc = json.loads(
        (REAL_FIXTURES / name).read_bytes().splitlines()[0]
        if name.endswith("l")
        else (REAL_FIXTURES / name).read_bytes()
    )
    data = doc["data"]
    first = data[0] if isinstance(data, list) else data
    assert key_of(json.dumps(doc)).key == first["id"]


def test_v2_errors_only_body_has_no_key() -> None:
    found = key_of((REAL_FIXTURES / "x_v2_postman_single_tweet_deleted_error.json").read_bytes())
    assert found.key is None and found.parseable and found.source == "x"


def test_v1_shapes_are_keyed_by_id_str() -> None:
    show = json.loads((REAL_FIXTURES / "x_v1_tweepy_statuses_show.json").read_bytes())
    assert key_of(json.dumps(show)).key == show["id_str"]
    search = json.loads((REAL_FIXTURES / "x_v1_tweepy_search_tweets.json").read_bytes())
    assert key_of(json.dumps(search)).key == search["statuses"][0]["id_str"]
    timeline = json.loads((REAL_FIXTURES / "x_v1_tweepy_home_timeline.json").read_bytes())
    assert key_of(json.dumps(timeline)).key == timeline[0]["id_str"]


def test_jetstream_events_are_keyed_by_at_uri() -> None:
    for raw in _lines(GOLDEN):
        doc = json.loads(raw)
        found = key_of(raw)
        assert found.source == "bluesky"
        if "commit" in doc:
            c = doc["commit"]
            assert found.key == f"at://{doc['did']}/{c['collection']}/{c['rkey']}"
        else:
            assert found.key == doc["did"]


def test_mastodon_statuses_are_keyed_by_uri() -> None:
    for name in ("mastodon_status_with_card.json", "mastodon_status_reblog.json"):
        raw = (REAL_FIXTURES / name).read_bytes()
        assert key_of(raw).key == json.loads(raw)["uri"]
        assert key_of(raw).source == "mastodon"


# -- X pure parts ---------------------------------------------------------------------------


def test_backoff_follows_x_documented_schedule() -> None:
    b = StreamBackoff()
    network = [b.network_error() for _ in range(70)]
    assert network[:3] == [0.25, 0.5, 0.75]
    assert max(network) == 16.0 and network[-1] == 16.0
    http = [b.http_error(503) for _ in range(8)]
    assert http == [5, 10, 20, 40, 80, 160, 320, 320]
    limited = [b.http_error(429) for _ in range(3)]
    assert limited == [60, 120, 240]
    b.reset()
    assert b.network_error() == 0.25 and b.http_error(500) == 5 and b.http_error(429) == 60


def test_backoff_scale_shrinks_every_wait() -> None:
    b = StreamBackoff(scale=0.01)
    assert b.http_error(429) == pytest.approx(0.6)
    assert b.network_error() == pytest.approx(0.0025)


def test_rate_limit_wait_uses_reset_header_and_caps() -> None:
    assert rate_limit_wait(1_000, now=990.0, fallback=60, cap=900) == 11.0
    assert rate_limit_wait(1_000, now=1_005.0, fallback=60, cap=900) == 1.0
    assert rate_limit_wait(None, now=0.0, fallback=60, cap=900) == 60
    assert rate_limit_wait(10_000, now=0.0, fallback=60, cap=900) == 900


def test_rule_batching_respects_length_limit_and_keeps_every_handle() -> None:
    brexit = json.loads((REAL_FIXTURES / "x_v2_twarc_search_recent_brexit.jsonl").read_bytes())
    handles = [u["username"] for u in brexit["includes"]["users"]]
    base = arxiv_url_clause()
    rules = batch_from_rules(handles, base, max_length=512)
    assert all(len(rule) <= 512 for rule in rules)
    assert all(rule.startswith(base + " ") for rule in rules)
    found = [h for rule in rules for h in rule.split("from:")[1:]]
    assert [h.split(" ")[0].rstrip(")") for h in found] == handles
    # Greedy: no two consecutive rules would fit together.
    assert len(rules) < len(handles)
    with pytest.raises(XConfigError, match="allows 2"):
        batch_from_rules(handles, base, max_length=512, max_rules=2)
    with pytest.raises(XConfigError, match="exceeds"):
        batch_from_rules(["a" * 600], base, max_length=512)


def test_default_clause_and_tags() -> None:
    clause = arxiv_url_clause()
    assert clause.startswith('(url:"arxiv.org" OR ') and clause.endswith(")")
    assert arxiv_url_clause(["arxiv.org"]) == 'url:"arxiv.org"'
    assert rule_tag("a") == rule_tag("a") != rule_tag("b")


def test_created_at_of_stream_message() -> None:
    line = _lines(STREAM)[0]
    assert created_at_epoch(line) == pytest.approx(1617292351.0)  # 2021-04-01T15:52:31Z
    assert created_at_epoch(b'{"data":{"id":"1"}}') is None


# -- Bluesky / Mastodon pure parts ------------------------------------------------------------


def test_jetstream_prefilter_keeps_reposts_and_deletes_and_arxiv_posts_only() -> None:
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for raw in _lines(CORPUS):
        doc = json.loads(raw)
        (kept if jetstream_event_passes(raw, doc) else dropped).append(doc)
    kinds = {(d["commit"]["collection"], d["commit"]["operation"]) for d in kept}
    # The recorded window has 15 reposts and 1 post delete, and no post that names arXiv.
    assert len(kept) == 16
    assert kinds == {("app.bsky.feed.repost", "create"), ("app.bsky.feed.post", "delete")}
    assert any(d.get("commit", {}).get("collection") == "app.bsky.feed.post" for d in dropped)
    # A real post whose text we point at arXiv passes (derived from a recorded post).
    post = next(
        d
        for d in dropped
        if d.get("commit", {}).get("operation") == "create"
        and d["commit"]["collection"] == "app.bsky.feed.post"
    )
    post["commit"]["record"]["text"] = "Read https://arxiv.org/abs/1605.08386"
    raw = json.dumps(post).encode()
    assert jetstream_event_passes(raw, post)


def test_mentions_arxiv_is_case_insensitive_and_knows_mirrors() -> None:
    assert mentions_arxiv(b"see ArXiv.org/abs/1605.08386")
    assert mentions_arxiv(b"https://huggingface.co/papers/2401.00001")
    assert not mentions_arxiv((REAL_FIXTURES / "mastodon_status_with_card.json").read_bytes())


def test_event_identity_distinguishes_create_and_delete() -> None:
    events = [json.loads(raw) for raw in _lines(CORPUS)]
    identities = {event_identity(e) for e in events}
    assert len(identities) == len(events)


def test_subscribe_url_sets_collections_cursor_and_compress() -> None:
    url = subscribe_url("wss://host/subscribe?x=1&cursor=5", ["a.b", "c.d"], 123, True)
    assert (
        url
        == "wss://host/subscribe?x=1&wantedCollections=a.b&wantedCollections=c.d&cursor=123&compress=true"
    )
    assert "cursor" not in subscribe_url("ws://h/subscribe", ["a"], None, False)


def test_sse_parser_reads_recorded_mastodon_stream() -> None:
    text = (REAL_FIXTURES / "mastodon_streaming_user_update.sse").read_text()
    events = list(iter_sse(iter(text.splitlines())))
    assert [e for e, _ in events] == ["update"]
    status = json.loads(events[0][1])
    assert status["id"] == "117024248092393661"


# -- checkpoints -----------------------------------------------------------------------------


def test_ack_tracker_commits_only_the_acknowledged_prefix() -> None:
    t = AckTracker()
    a, b = t.register(("f", 1)), t.register(("f", 2))
    t.register(("f", 3), acked=True)  # filtered record
    c = t.register(("f", 4))
    assert t.committed() is None
    t.ack(b)
    assert t.committed() is None  # a still pending
    t.ack(a)
    assert t.committed() == ("f", 3)
    assert t.pending() == 1
    t.ack(c)
    assert t.committed() == ("f", 4) and t.pending() == 0


def test_ack_tracker_keeps_last_real_position_over_none() -> None:
    t = AckTracker()
    t.ack(t.register("since-1"))
    t.ack(t.register(None))
    assert t.committed() == "since-1"


def test_checkpoint_file_round_trip_and_bad_file(tmp_path: Path) -> None:
    cp = CheckpointFile(tmp_path / "sub" / "c.json")
    assert cp.load() is None
    cp.save({"line": 3})
    assert cp.load() == {"line": 3}
    cp.path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        cp.load()


# -- replay inputs ---------------------------------------------------------------------------


def test_iter_records_reads_gz_and_whole_json_documents(tmp_path: Path) -> None:
    gz = tmp_path / "stream.jsonl.gz"
    gz.write_bytes(gzip.compress(STREAM.read_bytes()))
    plain = [payload for _, payload, _ in iter_records(STREAM)]
    assert [payload for _, payload, _ in iter_records(gz)] == plain
    assert plain == STREAM.read_bytes().split(b"\n")
    # Progress in on-disk bytes: a plain file's offset after each line (what `tell()`
    # gives), a compressed file's position now and then, never past its size.
    data = STREAM.read_bytes()
    ends = [len(data[: index + 1]) for index, byte in enumerate(data) if byte == ord("\n")]
    assert [consumed for _, _, consumed in iter_records(STREAM)] == [*ends, len(data)][: len(plain)]
    positions = [consumed for _, _, consumed in iter_records(gz)]
    assert positions == sorted(positions) and positions[-1] <= gz.stat().st_size
    pretty = REAL_FIXTURES / "x_v2_postman_single_tweet_tweet_fields.json"
    records = list(iter_records(pretty))
    assert len(records) == 1 and json.loads(records[0][1]) == json.loads(pretty.read_bytes())


def test_expand_inputs_sorts_directories_and_rejects_missing(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text("{}\n")
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(b"{}"))
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in expand_inputs([tmp_path])] == ["a.json.gz", "b.jsonl"]
    with pytest.raises(ReplayInputError, match="no such file"):
        expand_inputs([tmp_path / "missing.jsonl"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReplayInputError, match=r"no \.jsonl"):
        expand_inputs([empty])
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(ReplayInputError, match="cannot read"):
        list(iter_records(bad))


# -- settings --------------------------------------------------------------------------------


def test_secrets_never_show_and_can_come_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENDING_X_BEARER_TOKEN", "AAAA-secret-token")
    s = XProducerSettings()
    assert "AAAA-secret-token" not in repr(s) and "AAAA-secret-token" not in str(s.model_dump())
    assert s.bearer_token().get_secret_value() == "AAAA-secret-token"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert (
        XProducerSettings(x_bearer_token_file=token_file).bearer_token().get_secret_value()
        == "from-file"
    )
    monkeypatch.delenv("TRENDING_X_BEARER_TOKEN")
    with pytest.raises(ValueError, match="TRENDING_X_BEARER_TOKEN") as info:
        XProducerSettings().bearer_token()
    assert "secret" not in str(info.value)
    with pytest.raises(ValueError, match="cannot read") as info:
        XProducerSettings(x_bearer_token_file=tmp_path / "nope").bearer_token()
    m = MastodonProducerSettings(
        mastodon_access_token=SecretStr("tok-123"), mastodon_hashtag="#arxiv"
    )
    assert "tok-123" not in repr(m) and m.mastodon_hashtag == "arxiv"


def test_list_settings_accept_commas_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRENDING_BLUESKY_JETSTREAM_URLS", "ws://a/subscribe, ws://b/subscribe")
    assert BlueskyProducerSettings().bluesky_jetstream_urls == [
        "ws://a/subscribe",
        "ws://b/subscribe",
    ]
    monkeypatch.setenv("TRENDING_BLUESKY_JETSTREAM_URLS", '["ws://c/subscribe"]')
    assert BlueskyProducerSettings().bluesky_jetstream_urls == ["ws://c/subscribe"]
    s = BlueskyProducerSettings(namespace="ns1")
    assert s.cursor_path().name == "ns1.bluesky.json"


@pytest.mark.parametrize(("url", "expected"), URLS)
def test_prefilter_keeps_every_url_form_the_extractor_reads(url: str, expected: str) -> None:
    """The producers' byte pre-filter never drops a link the stream would count."""
    post = {"text": "see", "facets": [{"features": [{"uri": url}]}]}
    assert mentions_arxiv(json.dumps(post).encode())  # json.dumps keeps "/" as is
    assert mentions_arxiv(json.dumps(post).replace("/", "\\/").encode())  # escaped "\/"
    assert mentions_arxiv(url.upper().encode())


def test_key_of_reads_what_msgspec_refuses_as_the_stdlib_does() -> None:
    """msgspec decodes first; NaN, lone surrogates, numbers past a float and UTF-16,
    which it refuses and the stdlib reads, still give their key."""
    payloads = [
        b'{"data": {"id": "1", "score": NaN}}',
        b'{"data": {"id": "7", "text": "\\ud800"}}',
        b'{"data": {"id": "8", "score": 1e400}}',
        '{"data": {"id": "9"}}'.encode("utf-16"),
    ]
    for raw in payloads:
        with pytest.raises(msgspec.MsgspecError):
            msgspec.json.decode(raw)
        assert key_of(raw) == key_of_document(json.loads(raw))
        assert key_of(raw).key is not None
    big = b'{"data": {"id": 123456789012345678901234567890}}'
    assert key_of(big).key == "123456789012345678901234567890"
    assert key_of(b'{"data": ').reason == "invalid JSON"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "data",
                        "id",
                        "id_str",
                        "uri",
                        "did",
                        "kind",
                        "commit",
                        "statuses",
                        "errors",
                        "meta",
                    ]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_key_of_matches_the_stdlib_decoder_on_any_json(doc: object) -> None:
    raw = json.dumps(doc).encode()
    assert key_of(raw) == key_of_document(json.loads(raw))


def _stdlib_key_of(raw: bytes) -> PayloadKey:
    """`key_of` as it was: the stdlib decoder alone."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return PayloadKey(None, "unknown", "invalid JSON")
    return key_of_document(doc)


@given(st.binary(max_size=64) | st.sampled_from([b"\xff\xfe{}", b'{"id_str": "\xff"}']))
def test_key_of_never_raises_and_matches_the_stdlib_decoder_on_any_bytes(raw: bytes) -> None:
    assert key_of(raw) == _stdlib_key_of(raw)
