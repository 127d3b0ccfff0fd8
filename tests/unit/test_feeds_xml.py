"""Atom and RSS of a ranking (trending_arxiv.core.feeds), read back by feedparser."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.feedtext import html_text
from trending_arxiv.core import feeds

BASE = "https://trending.example.org"
AS_OF = datetime(2016, 2, 9, tzinfo=UTC)
HOSTILE_TITLE = 'A <b>bold</b> & "quoted" title ]]> <![CDATA[ x ]]> &amp; <script>alert(1)</script>'
HOSTILE_ABSTRACT = "We show x < y && y > z.]]>\nSecond line: <i>not markup</i> &lt;kept&gt;"


def _row(arxiv_id: str, posts: int, **extra: object) -> dict[str, object]:
    return {
        "arxiv_id": arxiv_id,
        "title": f"Paper {arxiv_id}",
        "authors": ["Ada Lovelace", "Alan Turing"],
        "abstract": f"Abstract of {arxiv_id}.",
        "categories": ["cs.CL", "cs.LG"],
        "published": "2016-02-08T00:00:00Z",
        "abs_url": f"https://arxiv.org/abs/{arxiv_id}",
        "pdf_url": f"https://arxiv.org/pdf/{arxiv_id}",
        "posts": posts,
        "accounts": posts - 1,
        "window": "24h",
        "counts_as_of": "2016-02-09T11:34:52Z",
        **extra,
    }


def _info(entries: list[feeds.FeedEntry], kind: str = "atom") -> feeds.FeedInfo:
    return feeds.FeedInfo(
        title=feeds.feed_title("24h", "posts"),
        self_url=f"{BASE}/feeds/trending.{kind}?window=24h&sort=posts",
        page_url=f"{BASE}/?window=24h&sort=posts",
        updated=feeds.feed_updated(entries, None),
    )


def _entries(rows: list[dict[str, object]]) -> list[feeds.FeedEntry]:
    return [feeds.feed_entry(row, BASE, None, feeds.EPOCH) for row in rows]


def test_entry_from_a_ranked_row() -> None:
    entry = feeds.feed_entry(_row("1602.02410", 142), BASE, None, feeds.EPOCH)
    assert entry.entry_id == "arxiv:1602.02410"
    assert entry.updated == datetime(2016, 2, 9, 11, 34, 52, tzinfo=UTC)
    assert entry.published == datetime(2016, 2, 8, tzinfo=UTC)
    assert entry.page_url == f"{BASE}/papers/1602.02410"
    assert entry.counts == "Captured posts and reposts: 142, by 141 accounts in 24h"
    assert entry.content == f"{entry.counts}.\n\nAbstract of 1602.02410."
    # a named moment wins over the stream's; an old-style id keeps its slash
    old = feeds.feed_entry(
        {"arxiv_id": "hep-th/9901001", "posts": 1, "accounts": 1, "window": "all"},
        BASE,
        AS_OF,
        feeds.EPOCH,
    )
    assert old.updated == AS_OF
    assert old.title == "arXiv:hep-th/9901001 (metadata pending)"
    assert old.abs_url == "https://arxiv.org/abs/hep-th/9901001"
    assert old.page_url == f"{BASE}/papers/hep-th/9901001"
    assert old.counts == "Captured posts and reposts: 1, by 1 account of all time"
    assert old.authors == () and old.pdf_url is None
    # a link that is not http(s) is replaced by arXiv's
    sneaky_row = _row("1601.00001", 2, abs_url="javascript:alert(1)")
    sneaky = feeds.feed_entry(sneaky_row, BASE, None, AS_OF)
    assert sneaky.abs_url == "https://arxiv.org/abs/1601.00001"


def test_atom_parses_with_entries_in_ranking_order() -> None:
    rows = [_row("1602.02410", 142), _row("1601.04589", 20), _row("1511.07916", 8)]
    entries = _entries(rows)
    parsed = feedparser.parse(feeds.render_atom(_info(entries), entries))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Trending arXiv: last 24h, most posted"
    assert parsed.feed.updated == "2016-02-09T11:34:52Z"
    assert [e.id for e in parsed.entries] == [f"arxiv:{r['arxiv_id']}" for r in rows]
    first = parsed.entries[0]
    assert first.title == "Paper 1602.02410"
    assert first.link == "https://arxiv.org/abs/1602.02410"
    related = {link.type: link.href for link in first.links if link.rel == "related"}
    assert related == {
        "text/html": f"{BASE}/papers/1602.02410",
        "application/pdf": "https://arxiv.org/pdf/1602.02410",
    }
    assert [a.name for a in first.authors] == ["Ada Lovelace", "Alan Turing"]
    assert [t.term for t in first.tags] == ["cs.CL", "cs.LG"]
    assert first.summary == "Abstract of 1602.02410."
    assert first.content[0].value.startswith("Captured posts and reposts: 142, by 141 accounts")
    assert first.updated == "2016-02-09T11:34:52Z"


def test_rss_parses_with_entries_in_ranking_order() -> None:
    rows = [_row("1602.02410", 142), _row("1601.04589", 20)]
    entries = _entries(rows)
    parsed = feedparser.parse(feeds.render_rss(_info(entries, "rss"), entries))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    assert [e.id for e in parsed.entries] == ["arxiv:1602.02410", "arxiv:1601.04589"]
    first = parsed.entries[0]
    assert first.link == "https://arxiv.org/abs/1602.02410"
    assert first.comments == f"{BASE}/papers/1602.02410"
    assert first.published_parsed[:6] == (2016, 2, 9, 11, 34, 52)
    text, tags = html_text(first.summary)
    assert (
        text
        == "Captured posts and reposts: 142, by 141 accounts in 24h.\n\nAbstract of 1602.02410."
    )
    assert tags == ["p", "p"]
    assert parsed.feed.link == f"{BASE}/?window=24h&sort=posts"


@pytest.mark.parametrize("render", [feeds.render_atom, feeds.render_rss])
def test_markup_in_titles_and_abstracts_stays_text(render) -> None:  # type: ignore[no-untyped-def]
    row = _row("1601.00001", 3, title=HOSTILE_TITLE + "\x00\x0b", abstract=HOSTILE_ABSTRACT)
    row["authors"] = ["<Eve> & Mallory"]
    entries = _entries([row])
    body = render(_info(entries), entries)
    assert b"<script>" not in body and b"<b>" not in body and b"]]>" not in body
    root = ET.fromstring(body)  # well-formed, despite the control characters
    texts = [node.text for node in root.iter() if node.text]
    assert HOSTILE_TITLE in texts
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    entry = parsed.entries[0]
    assert entry.title == HOSTILE_TITLE
    if render is feeds.render_atom:
        assert entry.summary == HOSTILE_ABSTRACT
        assert entry.content[0].value.endswith("\n\n" + HOSTILE_ABSTRACT)
    else:  # an RSS description is HTML: the markup in the abstract is escaped text in it
        text, tags = html_text(entry.summary)
        assert text.split("\n\n", 1)[1] == HOSTILE_ABSTRACT
        assert tags == ["p", "p"]


@given(st.text(max_size=200))
def test_any_text_makes_a_well_formed_feed(text: str) -> None:
    entries = _entries([_row("1601.00001", 1, title=text, abstract=text)])
    for render in (feeds.render_atom, feeds.render_rss):
        root = ET.fromstring(render(_info(entries), entries))
        assert root is not None
    kept = feeds.xml_text(text).strip()
    assert entries[0].title == (kept or "arXiv:1601.00001 (metadata pending)")
    assert entries[0].abstract == kept


def test_empty_feed_has_a_constant_date() -> None:
    info = _info([])
    assert info.updated == feeds.EPOCH
    parsed = feedparser.parse(feeds.render_atom(info, []))
    assert not parsed.bozo and parsed.entries == []
    assert feeds.feed_updated([], AS_OF) == AS_OF


def test_feed_title_says_the_view() -> None:
    title = feeds.feed_title("all", "date", "cs.CL", "slime", "alice", "bluesky", AS_OF)
    assert title == (
        "Trending arXiv: all time, newest paper, matching “slime”, posted by accounts alice "
        "follows, on Bluesky, in cs.CL, as of 2016-02-09T00:00:00Z"
    )


def test_conditional_requests() -> None:
    body = b"<feed/>"
    etag = feeds.entity_tag(body)
    assert etag.startswith('"') and etag == feeds.entity_tag(body) != feeds.entity_tag(b"x")
    modified = datetime(2016, 2, 9, 11, 34, 52, 500_000, tzinfo=UTC)
    date = feeds.http_date(modified)
    assert date == "Tue, 09 Feb 2016 11:34:52 GMT"
    assert feeds.is_not_modified(etag, modified, etag, None)
    assert feeds.is_not_modified(etag, modified, f'"other", W/{etag}', None)
    assert feeds.is_not_modified(etag, modified, "*", None)
    assert not feeds.is_not_modified(etag, modified, '"other"', date)  # If-None-Match wins
    assert feeds.is_not_modified(etag, modified, None, date)
    assert feeds.is_not_modified(etag, modified, None, "Wed, 10 Feb 2016 00:00:00 GMT")
    assert not feeds.is_not_modified(etag, modified, None, "Tue, 09 Feb 2016 11:34:51 GMT")
    assert not feeds.is_not_modified(etag, modified, None, "yesterday")
    assert not feeds.is_not_modified(etag, modified, None, None)
