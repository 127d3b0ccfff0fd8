"""Cheap byte-level pre-filters: keep what may link arXiv, drop the rest early.

They may let through posts that only mention the word "arxiv" (the stream worker
decides), but never drop a post that links arXiv or one of its mirrors.
"""

from __future__ import annotations

import json
from typing import Any

# Every form the extractor reads names one of these: arXiv and the sites with "arxiv" in
# the path (Semantic Scholar, SciRate, the 10.48550 DOI), ar5iv, alphaXiv, and Hugging
# Face's paper pages (bare host: JSON may escape the slash as "\/").
_NEEDLES = (b"arxiv", b"ar5iv", b"alphaxiv", b"huggingface.co", b"hf.co")


def mentions_arxiv(raw: bytes) -> bool:
    """True if the payload may link a paper (case-insensitive substring test)."""
    lowered = raw.lower()
    return any(needle in lowered for needle in _NEEDLES)


def jetstream_event_passes(raw: bytes, doc: dict[str, Any]) -> bool:
    """Keep posts that mention arXiv, and every repost and every delete of a post/repost.

    Reposts and deletes carry no link themselves; the stream needs them all to count
    reposts of (and withdraw) posts that do.
    """
    commit = doc.get("commit")
    if doc.get("kind") != "commit" or not isinstance(commit, dict):
        return False
    collection = commit.get("collection")
    operation = commit.get("operation")
    if collection == "app.bsky.feed.repost":
        return operation in ("create", "delete")
    if collection == "app.bsky.feed.post":
        if operation == "delete":
            return True
        return mentions_arxiv(raw)
    return False


def decode_jetstream(raw: bytes) -> dict[str, Any] | None:
    """The event as a dict, or None if it is not a JSON object."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
