"""Follow lists in the names people know, through the real commands on the real
Elasticsearch, with local servers standing in for X, Bluesky and Mastodon.

Handles resolve from the posts already seen and from each network's API; a list given
as handles gives the same per-user ranking as the same list given as ids; `follows
import` pulls a person's real follow list; an empty list or a handle that resolves
nowhere is an error and stores nothing; posts are shown with their author's id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.fakes.directories import FakeBlueskyAppView, FakeMastodon
from tests.fakes.paths import REAL_FIXTURES
from tests.fakes.x_api import FakeXApi
from tests.webdata import seeded_namespace
from trending_arxiv.search.follows import get_follow_list
from trending_arxiv.settings import CommonSettings

pytestmark = pytest.mark.integration

X_USERS = json.loads(
    (REAL_FIXTURES / "x_v2_postman_recent_search_expansions_users.json").read_text()
)["includes"]["users"]


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[Elasticsearch, CommonSettings]]:
    with seeded_namespace("follows") as found:
        yield found


@pytest.fixture
def networks() -> Iterator[tuple[FakeXApi, FakeBlueskyAppView, FakeMastodon]]:
    with FakeXApi() as x, FakeBlueskyAppView() as bluesky, FakeMastodon() as mastodon:
        yield x, bluesky, mastodon


def _cli(
    settings: CommonSettings, networks: tuple[FakeXApi, FakeBlueskyAppView, FakeMastodon],
    *args: str,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    x, bluesky, mastodon = networks
    env = {**os.environ, "TRENDING_NAMESPACE": settings.namespace,
           "ELASTICSEARCH_URL": settings.elasticsearch_url,
           "TRENDING_X_BEARER_TOKEN": "test-token", "TRENDING_X_API_BASE_URL": x.url,
           "TRENDING_BLUESKY_API_BASE_URL": bluesky.url,
           "TRENDING_MASTODON_BASE_URL": mastodon.url, "COLUMNS": "200"}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "trending_arxiv.cli.main", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _mentions(es: Elasticsearch, settings: CommonSettings) -> list[dict]:
    hits = es.search(index=settings.indices.mentions, size=10_000)["hits"]["hits"]
    return [h["_source"] for h in hits]


def test_a_list_of_handles_ranks_as_the_same_list_of_ids(
    seeded: tuple[Elasticsearch, CommonSettings],
    networks: tuple[FakeXApi, FakeBlueskyAppView, FakeMastodon],
    tmp_path: Path,
) -> None:
    es, settings = seeded
    x, bluesky, _ = networks
    authors = {m["account"]: (m["source"], m["author_handle"]) for m in _mentions(es, settings)}
    chosen = sorted(authors)[::3]
    assert {authors[a][0] for a in chosen} == {"x", "bluesky"}
    # As people write them: @Name on X (any case), the domain handle on Bluesky.
    as_handles = [
        f"@{handle.title()}" if source == "x" else handle
        for source, handle in (authors[a] for a in chosen)
    ]
    # Two people who never posted here: only their network knows them.
    x.users = {"newcomer": {"id": "777000", "name": "New", "username": "Newcomer"}}
    bluesky.handles = {"fresh.example.org": "did:plc:freshfreshfresh"}
    (tmp_path / "ids.txt").write_text("\n".join([*chosen, "x:777000", "did:plc:freshfreshfresh"]))
    (tmp_path / "handles.txt").write_text(
        "# whom I read\n" + "\n".join([*as_handles, "@newcomer", "fresh.example.org"]) + "\n"
    )
    by_ids = _cli(settings, networks, "follows", "by-ids", str(tmp_path / "ids.txt"))
    by_handles = _cli(settings, networks, "follows", "set", "by-handles",
                      str(tmp_path / "handles.txt"))  # fmt: skip
    assert by_ids.returncode == 0, by_ids.stderr
    assert by_handles.returncode == 0, by_handles.stderr
    assert f"{len(chosen)} handles from posts seen, 2 from the networks" in by_handles.stderr
    stored = get_follow_list(es, settings, "by-handles")
    assert stored is not None
    assert stored["accounts"] == get_follow_list(es, settings, "by-ids")["accounts"]  # type: ignore[index]
    assert stored["handles"]["x:777000"] == "newcomer"

    rankings = []
    for user in ("by-ids", "by-handles"):
        shown = _cli(settings, networks, "top", "--user", user, "--window", "all", "--json")
        assert shown.returncode == 0, shown.stderr
        rankings.append([json.loads(line) for line in shown.stdout.splitlines()])
    assert rankings[0] and rankings[0] == rankings[1]


def test_handles_that_resolve_nowhere_and_empty_lists_store_nothing(
    seeded: tuple[Elasticsearch, CommonSettings],
    networks: tuple[FakeXApi, FakeBlueskyAppView, FakeMastodon],
    tmp_path: Path,
) -> None:
    es, settings = seeded
    (tmp_path / "bad.txt").write_text("@reader1\n@nobody_here\nghost.bsky.social\n")
    done = _cli(settings, networks, "follows", "broken", str(tmp_path / "bad.txt"))
    assert done.returncode == 1
    assert "2 handle(s) resolve to no account, nothing stored" in done.stderr
    assert "@nobody_here (no such account on x)" in done.stderr
    assert "ghost.bsky.social (no such account on bluesky)" in done.stderr
    assert get_follow_list(es, settings, "broken") is None

    (tmp_path / "empty.txt").write_text("# nobody yet\n\n")
    done = _cli(settings, networks, "follows", "empty", str(tmp_path / "empty.txt"))
    assert done.returncode == 1 and "the follow list is empty" in done.stderr
    assert get_follow_list(es, settings, "empty") is None

    (tmp_path / "typo.txt").write_text("smerity\n")
    done = _cli(settings, networks, "follows", "typo", str(tmp_path / "typo.txt"))
    assert done.returncode == 2 and "accepted: @name" in done.stderr


def test_follows_import_pulls_a_real_follow_list_from_each_network(
    seeded: tuple[Elasticsearch, CommonSettings],
    networks: tuple[FakeXApi, FakeBlueskyAppView, FakeMastodon],
) -> None:
    es, settings = seeded
    x, bluesky, mastodon = networks
    me, followed = X_USERS[0], X_USERS[1:]
    x.users = {me["username"].lower(): me}
    x.following_pages = [followed[:1], followed[1:]]
    done = _cli(settings, networks, "follows", "import", "x", f"@{me['username']}",
                "--user", "reader-x")  # fmt: skip
    assert done.returncode == 0, done.stderr
    stored = get_follow_list(es, settings, "reader-x")
    assert stored is not None
    assert stored["accounts"] == sorted(f"x:{u['id']}" for u in followed)

    bluesky.handles = {"alice.bsky.social": "did:plc:alice"}
    people = [(f"did:plc:seed{n:04d}", f"reader{n}.bsky.social") for n in range(250)]
    bluesky.follows = {"alice.bsky.social": people}
    done = _cli(settings, networks, "follows", "import", "bluesky", "alice.bsky.social")
    assert done.returncode == 0, done.stderr
    stored = get_follow_list(es, settings, "alice.bsky.social")
    assert stored is not None and stored["accounts"] == sorted(
        f"bluesky:{did}" for did, _ in people
    )
    pages = bluesky.requests_to("/xrpc/app.bsky.graph.getFollows")
    assert [r.param("cursor") for r in pages] == [None, "100", "200"]

    mastodon.accounts = {"mastodonpy_test": "109440137734600341", "ada": "1", "bob": "2",
                         "cy@other.example": "3"}  # fmt: skip
    mastodon.following = {"109440137734600341": ["ada", "bob", "cy@other.example"]}
    host = mastodon.url.split("//")[1]
    done = _cli(settings, networks, "follows", "import", "mastodon", f"@mastodonpy_test@{host}",
                "--user", "john")  # fmt: skip
    assert done.returncode == 0, done.stderr
    stored = get_follow_list(es, settings, "john")
    assert stored is not None
    assert stored["accounts"] == ["mastodon:1", "mastodon:2", "mastodon:3"]
    assert stored["handles"]["mastodon:1"] == f"ada@{host}"
    assert stored["handles"]["mastodon:3"] == "cy@other.example"

    done = _cli(settings, networks, "follows", "import", "bluesky", "nobody.bsky.social")
    assert done.returncode == 1 and "Bluesky has no account nobody.bsky.social" in done.stderr


def test_posts_are_shown_with_their_authors_ids(
    seeded: tuple[Elasticsearch, CommonSettings],
    networks: tuple[FakeXApi, FakeBlueskyAppView, FakeMastodon],
) -> None:
    _, settings = seeded
    shown = _cli(settings, networks, "paper", "1602.02410", "--json")
    assert shown.returncode == 0, shown.stderr
    posts = json.loads(shown.stdout)["posts"]
    assert posts
    for post in posts:
        assert post["account"] == f"{post['source']}:{post['author_id']}"
        assert post["author_handle"]
    table = _cli(settings, networks, "paper", "1602.02410")
    assert f"@{posts[0]['author_handle']} ({posts[0]['account']})" in table.stdout
