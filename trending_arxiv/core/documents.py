"""Elasticsearch documents built from pipeline records: pure, deterministic `_id`s."""

from __future__ import annotations

from typing import Any

from trending_arxiv.core.models import CountUpdate, Mention, to_utc_iso

METADATA_FIELDS = (
    "title",
    "authors",
    "abstract",
    "categories",
    "primary_category",
    "published",
    "updated",
    "doi",
    "journal_ref",
    "comment",
)


def post_url(source: str, post_id: str, author_handle: str | None) -> str | None:
    """A link back to the post on its network, when one can be formed."""
    if source == "x":
        return f"https://x.com/{author_handle or 'i'}/status/{post_id}"
    if source == "bluesky" and post_id.startswith("at://"):
        did, _, rest = post_id[len("at://") :].partition("/")
        collection, _, rkey = rest.partition("/")
        if collection == "app.bsky.feed.post":
            return f"https://bsky.app/profile/{author_handle or did}/post/{rkey}"
        return None
    if source == "mastodon" and post_id.startswith("http"):
        return post_id
    return None


def mention_document(mention: Mention, paper: dict[str, Any] | None) -> dict[str, Any]:
    """One (post, paper) document of the mentions index."""
    doc: dict[str, Any] = {
        "@timestamp": to_utc_iso(mention.created_at),
        "post_id": mention.post_id,
        "arxiv_id": mention.arxiv_id,
        "source": mention.source,
        "kind": mention.kind,
        "author_id": mention.author_id,
        "author_handle": mention.author_handle,
        "account": mention.account,
        "text": mention.text,
        "ref_post_id": mention.ref_post_id,
        "url": post_url(mention.source, mention.post_id, mention.author_handle),
    }
    if paper:
        doc["categories"] = paper.get("categories") or []
        doc["primary_category"] = paper.get("primary_category")
    return doc


def counts_document(update: CountUpdate) -> dict[str, Any]:
    """The counting part of a paper document (a partial update; metadata is separate)."""
    return {
        "arxiv_id": update.arxiv_id,
        "posts": dict(update.posts),
        "accounts": dict(update.accounts),
        "trend_score": update.trend_score,
        "trend_rank": update.trend_rank,
        "velocity": update.velocity,
        "counts_as_of": to_utc_iso(update.as_of),
        "first_seen": to_utc_iso(update.first_seen) if update.first_seen else None,
        "last_seen": to_utc_iso(update.last_seen) if update.last_seen else None,
        "sources": dict(update.sources),
    }


_METADATA_SET = frozenset(METADATA_FIELDS)


def metadata_document(arxiv_id: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The metadata part of a paper document; `None` records that arXiv doesn't know it."""
    if metadata is None:
        return {"arxiv_id": arxiv_id, "metadata_status": "not_found"}
    doc = {field: value for field, value in metadata.items() if value and field in _METADATA_SET}
    doc["arxiv_id"] = arxiv_id
    doc["metadata_status"] = "found"
    doc["abs_url"] = f"https://arxiv.org/abs/{arxiv_id}"
    doc["pdf_url"] = f"https://arxiv.org/pdf/{arxiv_id}"
    return doc
