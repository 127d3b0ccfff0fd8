"""The Bluesky feed generator's pure parts (trending_arxiv.core.skyfeed), its settings and
its `feeds record` command, checked against the lexicons with the `atproto` models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.lexicon import DESCRIBE, GENERATOR_RECORD, PUT_RECORD, SKELETON, validate
from trending_arxiv.core import skyfeed
from trending_arxiv.core.skyfeed import SkeletonCursor
from trending_arxiv.web.feed_settings import FeedDefinition, FeedSettings

ALICE = "did:plc:ywd6p5dgz3rqidmqqhzss243"
BOB = "did:plc:iq6lfw4cidkdyfolykz6n3d2"
T0 = datetime(2016, 2, 8, 12, tzinfo=UTC)


def _post(did: str, rkey: str) -> str:
    return f"at://{did}/app.bsky.feed.post/{rkey}"


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=0, max_value=skyfeed.MAX_POSITION),
)
def test_cursor_round_trip(moment: datetime, position: int) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert SkeletonCursor.decode(SkeletonCursor(moment, position).encode()) == SkeletonCursor(
        moment, position
    )


@pytest.mark.parametrize(
    "text",
    ["", "abc", "12::", "::3", "1455019200000", "1455019200000::-1", "1455019200000::10001",
     "1455019200000:: 3", "1455019200000::3\n", "9" * 16 + "::1", "999999999999999::1",
     "1455019200000::3::4", "٣::3"],
)  # fmt: skip
def test_bad_cursors_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError):
        SkeletonCursor.decode(text)


@given(st.text(max_size=40))
def test_any_cursor_text_is_a_cursor_or_a_value_error(text: str) -> None:
    try:
        cursor = SkeletonCursor.decode(text)
    except ValueError:
        return
    assert 0 <= cursor.position <= skyfeed.MAX_POSITION


def test_record_uris() -> None:
    uri = skyfeed.parse_record_uri(f"at://{ALICE}/app.bsky.feed.generator/trending-24h")
    assert (uri.authority, uri.collection, uri.rkey) == (
        ALICE,
        "app.bsky.feed.generator",
        "trending-24h",
    )
    assert str(uri) == f"at://{ALICE}/app.bsky.feed.generator/trending-24h"
    for bad in ["", "https://bsky.app/x", "at://alice/app.bsky.feed.generator/x",
                f"at://{ALICE}/app.bsky.feed.generator", f"at://{ALICE}/app.bsky.feed.generator/",
                f"at://{ALICE}/x/y/z", f"at://{ALICE}/app.bsky.feed.generator/a b"]:  # fmt: skip
        with pytest.raises(ValueError):
            skyfeed.parse_record_uri(bad)


def test_post_uri_from_a_mention() -> None:
    assert skyfeed.post_uri(_post(ALICE, "3d7il7zyddy5n")) == _post(ALICE, "3d7il7zyddy5n")
    # a bare record key is joined with its author's DID
    assert skyfeed.post_uri("3d7il7zyddy5n", ALICE) == _post(ALICE, "3d7il7zyddy5n")
    assert skyfeed.post_uri(f"at://{ALICE}/app.bsky.feed.repost/3d7il7zyddy5n") is None
    assert skyfeed.post_uri("3d7il7zyddy5n", "12345") is None  # an X author, no DID
    assert skyfeed.post_uri("https://mastodon.social/@a/1", None) is None
    assert skyfeed.post_uri(None) is None


def test_best_post_is_the_most_reposted_else_the_earliest() -> None:
    early, late = _post(ALICE, "3d7aaaaaaaaaa"), _post(BOB, "3d7zzzzzzzzzz")
    other = _post(BOB, "3d7b")
    originals = [(T0 + timedelta(hours=1), late), (T0, early)]
    assert skyfeed.best_post({}, originals) == early
    assert skyfeed.best_post({late: 2, early: 1}, originals) == late
    # equally reposted: the earliest post (by its time, else by its TID record key)
    assert skyfeed.best_post({late: 2, early: 2}, originals) == early
    assert skyfeed.best_post({late: 1, other: 1}, []) == other
    # a reposted post the index has not seen itself still counts
    assert skyfeed.best_post({other: 3}, originals) == other
    assert skyfeed.best_post({"at://x/app.bsky.feed.repost/1": 5}, originals) == early
    assert skyfeed.best_post({}, []) is None


def test_skeleton_page_skips_papers_without_posts() -> None:
    ranked = [("a", "at://1"), ("b", None), ("c", "at://3"), ("d", "at://4")]
    assert skyfeed.skeleton_page(ranked, 2) == (["at://1", "at://3"], 3, True)
    assert skyfeed.skeleton_page(ranked, 5) == (["at://1", "at://3", "at://4"], 4, False)
    assert skyfeed.skeleton_page([], 3) == ([], 0, False)


def test_responses_follow_the_lexicons() -> None:
    did = skyfeed.service_did("feeds.example.org")
    assert did == "did:web:feeds.example.org"
    assert skyfeed.service_did("localhost", 8000) == "did:web:localhost%3A8000"
    with pytest.raises(ValueError):
        skyfeed.service_did("https://feeds.example.org")
    uris = [skyfeed.feed_uri(ALICE, "trending-24h"), skyfeed.feed_uri(ALICE, "trending-cs-cl")]
    described = validate(skyfeed.describe_response(did, uris), DESCRIBE)
    assert [f.uri for f in described.feeds] == uris
    body = skyfeed.skeleton_response(
        [_post(ALICE, "3d7il7zyddy5n"), _post(BOB, "3dcsrdglctqrt")], SkeletonCursor(T0, 3)
    )
    page = validate(body, SKELETON)
    assert page.cursor == SkeletonCursor(T0, 3).encode()
    assert "cursor" not in skyfeed.skeleton_response([], None)
    document = skyfeed.did_document(did, "https://feeds.example.org")
    assert document["id"] == did
    assert document["service"] == [
        {"id": "#bsky_fg", "type": "BskyFeedGenerator",
         "serviceEndpoint": "https://feeds.example.org"}
    ]  # fmt: skip
    assert skyfeed.xrpc_error("UnknownFeed", "no") == {"error": "UnknownFeed", "message": "no"}


def test_settings_read_feeds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRENDING_FEEDS_HOSTNAME", "feeds.example.org")
    monkeypatch.setenv("TRENDING_FEEDS_PUBLISHER_DID", ALICE)
    monkeypatch.setenv(
        "TRENDING_FEEDS",
        json.dumps([
            {"name": "trending-cs-cl", "display_name": "cs.CL", "category": "cs.CL"},
            {"name": "alice-follows", "display_name": "Alice's", "user": "alice", "window": "7d"},
        ]),
    )  # fmt: skip
    settings = FeedSettings()
    assert [f.name for f in settings.feeds] == ["trending-cs-cl", "alice-follows"]
    assert settings.service_did == "did:web:feeds.example.org"
    assert settings.service_endpoint == "https://feeds.example.org"
    assert (
        settings.feed_uri(settings.feeds[1])
        == f"at://{ALICE}/app.bsky.feed.generator/alice-follows"
    )
    assert settings.feeds[1].view.user == "alice" and settings.feeds[1].view.window == "7d"
    assert settings.feed_named("nope") is None
    monkeypatch.delenv("TRENDING_FEEDS_PUBLISHER_DID")
    assert FeedSettings().publisher_did == "did:web:feeds.example.org"


@pytest.mark.parametrize(
    "feeds",
    [
        [{"name": "a", "display_name": "A"}, {"name": "a", "display_name": "B"}],
        [{"name": "Has Space", "display_name": "A"}],
        [{"name": "much-too-long-name", "display_name": "A"}],
        [{"name": "a", "display_name": "x" * 25}],
        [{"name": "a", "display_name": "A", "window": "2d"}],
        [{"name": "a", "display_name": "A", "colour": "red"}],
    ],
)
def test_bad_feed_settings_are_refused(feeds: list[dict[str, str]]) -> None:
    with pytest.raises(ValidationError):
        FeedSettings(feeds=[FeedDefinition(**f) for f in feeds])  # type: ignore[arg-type]


def test_bad_hostname_or_publisher_is_refused() -> None:
    with pytest.raises(ValidationError):
        FeedSettings(feeds_hostname="feeds.example.org/path")
    with pytest.raises(ValidationError):
        FeedSettings(feeds_publisher_did="alice.bsky.social")


def test_record_command_prints_a_put_record_input() -> None:
    env = {
        **os.environ,
        "TRENDING_FEEDS_HOSTNAME": "feeds.example.org",
        "TRENDING_FEEDS_PUBLISHER_DID": ALICE,
    }
    done = subprocess.run(
        [sys.executable, "-m", "trending_arxiv.cli.main", "feeds", "record", "trending-24h",
         "--created-at", "2026-12-05T10:00:00"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    body = json.loads(done.stdout)
    validate(body, PUT_RECORD)
    record = validate(body["record"], GENERATOR_RECORD)
    assert (body["repo"], body["collection"], body["rkey"]) == (
        ALICE,
        "app.bsky.feed.generator",
        "trending-24h",
    )
    assert record.did == "did:web:feeds.example.org"
    assert record.display_name == "Trending arXiv: 24h"
    assert record.created_at == "2026-12-05T10:00:00.000Z"
    unknown = subprocess.run(
        [sys.executable, "-m", "trending_arxiv.cli.main", "feeds", "record", "nope"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "no feed named 'nope'" in unknown.stderr and "trending-24h" in unknown.stderr
