"""Atom and RSS feeds of a ranking: one entry per paper (pure, standard library only).

`feed_entry` turns one ranked paper (a row of `/api/trending` or `/api/search`) into a
`FeedEntry`; `render_atom` and `render_rss` write the XML with `xml.etree`, which
escapes every text node (`<`, `&`, and `>` so `]]>` stays text) — nothing is ever
pasted into markup. `entity_tag`, `http_date` and `is_not_modified` answer
conditional requests (RFC 9110) so feed readers can poll cheaply.
"""

from __future__ import annotations

import hashlib
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
ATOM_TYPE = "application/atom+xml"
RSS_TYPE = "application/rss+xml"
GENERATOR = "Trending arXiv"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SORT_LABELS = {
    "posts": "most posted",
    "accounts": "most accounts",
    "score": "trending now",
    "date": "newest paper",
    "relevance": "most relevant",
    "field": "unusual for its field",
}
SOURCE_LABELS = {"x": "X", "bluesky": "Bluesky", "mastodon": "Mastodon"}
# Characters XML 1.0 cannot carry at all, even escaped: C0 controls other than tab, LF
# and CR, lone surrogates, U+FFFE/U+FFFF. A post or an abstract may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: object) -> str:
    """`value` as text an XML document can hold (characters XML forbids are dropped)."""
    return _NOT_XML.sub("", "" if value is None else str(value))


def _utc(value: object) -> datetime | None:
    """An aware UTC datetime from an ISO-8601 string or datetime; None if unusable."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def atom_date(moment: datetime) -> str:
    """RFC 3339 in UTC, whole seconds (`2016-02-09T00:00:00Z`)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def http_date(moment: datetime) -> str:
    """An HTTP/RFC 822 date (`Tue, 09 Feb 2016 00:00:00 GMT`), as RSS and Last-Modified use."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def counts_text(posts: int, accounts: int, window: str) -> str:
    """The entry's counts line, e.g. 'Captured posts and reposts: 142, by 97 accounts in 24h'."""
    noun = "account" if accounts == 1 else "accounts"
    span = "of all time" if window == "all" else f"in {window}"
    return f"Captured posts and reposts: {posts}, by {accounts} {noun} {span}"


def paper_page_url(base_url: str, arxiv_id: str) -> str:
    """Our page of one paper (`<base>/papers/<id>`; old-style ids keep their slash)."""
    return f"{base_url.rstrip('/')}/papers/{quote(arxiv_id, safe='/')}"


def arxiv_abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{quote(arxiv_id, safe='/')}"


def _http_url(value: object) -> str | None:
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value
    return None


@dataclass(frozen=True)
class FeedEntry:
    """One paper of a feed."""

    arxiv_id: str
    title: str
    authors: tuple[str, ...]
    abstract: str
    categories: tuple[str, ...]
    abs_url: str
    pdf_url: str | None
    page_url: str
    posts: int
    accounts: int
    window: str
    updated: datetime
    published: datetime | None

    @property
    def entry_id(self) -> str:
        return f"arxiv:{self.arxiv_id}"

    @property
    def counts(self) -> str:
        return counts_text(self.posts, self.accounts, self.window)

    @property
    def content(self) -> str:
        """What a reader shows: the counts, then the abstract."""
        return f"{self.counts}.\n\n{self.abstract}" if self.abstract else f"{self.counts}."

    @property
    def content_html(self) -> str:
        """`content` as HTML, for RSS, whose readers take a description as HTML: the text
        is HTML-escaped, so an abstract's `<Title>` shows as text, not as a tag."""
        paragraphs = [f"{self.counts}.", self.abstract] if self.abstract else [f"{self.counts}."]
        return "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)


def feed_entry(
    row: Mapping[str, Any], base_url: str, as_of: datetime | None, fallback: datetime
) -> FeedEntry:
    """A ranked paper as a feed entry.

    `updated` is the moment its counts hold for: `as_of` when the view names one, else
    the paper's `counts_as_of` (the stream's time of its latest counts), else `fallback`.
    """
    arxiv_id = str(row.get("arxiv_id") or "")
    authors = row.get("authors") or []
    categories = row.get("categories") or (
        [row["primary_category"]] if row.get("primary_category") else []
    )
    updated = _utc(as_of) or _utc(row.get("counts_as_of")) or _utc(row.get("as_of")) or fallback
    return FeedEntry(
        arxiv_id=arxiv_id,
        title=xml_text(row.get("title")).strip() or f"arXiv:{arxiv_id} (metadata pending)",
        authors=tuple(xml_text(a) for a in authors if isinstance(a, str) and a.strip()),
        abstract=xml_text(row.get("abstract") or "").strip(),
        categories=tuple(xml_text(c) for c in categories if isinstance(c, str) and c),
        abs_url=_http_url(row.get("abs_url")) or arxiv_abs_url(arxiv_id),
        pdf_url=_http_url(row.get("pdf_url")),
        page_url=paper_page_url(base_url, arxiv_id),
        posts=int(row.get("posts") or 0),
        accounts=int(row.get("accounts") or 0),
        window=str(row.get("window") or "all"),
        updated=updated,
        published=_utc(row.get("published")),
    )


def feed_title(
    window: str,
    sort: str,
    category: str | None = None,
    q: str | None = None,
    user: str | None = None,
    source: str | None = None,
    as_of: datetime | None = None,
) -> str:
    """The view in words, as the page says it (`Trending arXiv: last 24h, most posted`)."""
    parts = ["all time" if window == "all" else f"last {window}", SORT_LABELS.get(sort, sort)]
    if q:
        parts.append(f"matching “{q}”")
    if user:
        parts.append(f"posted by accounts {user} follows")
    if source:
        parts.append(f"on {SOURCE_LABELS.get(source, source)}")
    if category:
        parts.append(f"in {category}")
    if as_of is not None:
        parts.append(f"as of {atom_date(as_of)}")
    return xml_text(f"{GENERATOR}: {', '.join(parts)}")


@dataclass(frozen=True)
class FeedInfo:
    """The feed as a whole: what it shows and where it and its page live."""

    title: str
    self_url: str
    page_url: str
    updated: datetime
    description: str = "arXiv papers ranked by the posts on X, Bluesky and Mastodon that link them."


def feed_updated(entries: Sequence[FeedEntry], as_of: datetime | None) -> datetime:
    """The newest entry's `updated`; for an empty feed the view's moment, else the epoch
    (a constant, so an empty feed keeps its ETag and Last-Modified)."""
    if entries:
        return max(entry.updated for entry in entries)
    return _utc(as_of) or EPOCH


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    if text is not None:
        node.text = xml_text(text)
    return node


def _serialize(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def render_atom(info: FeedInfo, entries: Iterable[FeedEntry]) -> bytes:
    """An Atom 1.0 document (RFC 4287)."""
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(feed, "id", info.self_url)
    _sub(feed, "title", info.title, type="text")
    _sub(feed, "subtitle", info.description, type="text")
    _sub(feed, "updated", atom_date(info.updated))
    _sub(feed, "link", rel="self", type=ATOM_TYPE, href=info.self_url)
    _sub(feed, "link", rel="alternate", type="text/html", href=info.page_url)
    _sub(_sub(feed, "author"), "name", GENERATOR)  # for entries whose authors are unknown yet
    _sub(feed, "generator", GENERATOR)
    for entry in entries:
        node = _sub(feed, "entry")
        _sub(node, "id", entry.entry_id)
        _sub(node, "title", entry.title, type="text")
        _sub(node, "updated", atom_date(entry.updated))
        if entry.published is not None:
            _sub(node, "published", atom_date(entry.published))
        for name in entry.authors:
            _sub(_sub(node, "author"), "name", name)
        _sub(node, "link", rel="alternate", type="text/html", href=entry.abs_url)
        _sub(node, "link", rel="related", type="text/html", href=entry.page_url,
             title="Trending arXiv: counts and posts")  # fmt: skip
        if entry.pdf_url:
            _sub(node, "link", rel="related", type="application/pdf", href=entry.pdf_url,
                 title="PDF")  # fmt: skip
        for category in entry.categories:
            _sub(node, "category", term=category)
        _sub(node, "summary", entry.abstract or entry.counts, type="text")
        _sub(node, "content", entry.content, type="text")
    return _serialize(feed)


def render_rss(info: FeedInfo, entries: Iterable[FeedEntry]) -> bytes:
    """An RSS 2.0 document (with `atom:link rel="self"`, as validators ask).

    Titles are plain text (as readers take them); descriptions are escaped HTML."""
    rss = ET.Element("rss", {"version": "2.0", "xmlns:atom": ATOM_NS, "xmlns:dc": DC_NS})
    channel = _sub(rss, "channel")
    _sub(channel, "title", info.title)
    _sub(channel, "link", info.page_url)
    _sub(channel, "description", info.description)
    _sub(channel, "lastBuildDate", http_date(info.updated))
    _sub(channel, "generator", GENERATOR)
    _sub(channel, "atom:link", rel="self", type=RSS_TYPE, href=info.self_url)
    for entry in entries:
        item = _sub(channel, "item")
        _sub(item, "title", entry.title)
        _sub(item, "link", entry.abs_url)
        _sub(item, "guid", entry.entry_id, isPermaLink="false")
        _sub(item, "pubDate", http_date(entry.updated))
        _sub(item, "description", entry.content_html)
        _sub(item, "comments", entry.page_url)
        for name in entry.authors:
            _sub(item, "dc:creator", name)
        for category in entry.categories:
            _sub(item, "category", category)
    return _serialize(rss)


# -- conditional requests ------------------------------------------------------------------
def entity_tag(body: bytes) -> str:
    """A strong ETag of a response body."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _etags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def is_not_modified(
    etag: str,
    last_modified: datetime,
    if_none_match: str | None,
    if_modified_since: str | None,
) -> bool:
    """Whether a GET may be answered 304 (RFC 9110 sections 13.1.2, 13.1.3, 13.2.2).

    If-None-Match wins when present (weak comparison); If-Modified-Since is read only
    without it, and an unreadable date is ignored.
    """
    if if_none_match is not None:
        tags = _etags(if_none_match)
        return "*" in tags or etag.removeprefix("W/") in tags
    if not if_modified_since:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified.astimezone(UTC).replace(microsecond=0) <= since
