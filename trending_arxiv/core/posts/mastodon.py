"""Mastodon: statuses (REST) and streaming-API events."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from trending_arxiv.core.posts.common import (
    NormalizedPost,
    _dedupe,
    _dict,
    _id_str,
    _iso_time,
    _opt_str,
    _papers,
    _text,
)
from trending_arxiv.core.posts.decode import _decode

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
