"""Test data for the API and the page: the 2016 seed papers with their counts, in a
throw-away Elasticsearch namespace.

Each seed paper gets exactly its page count of mentions (`seed_posts`), dated after its
submission, from fewer distinct accounts than posts. The documents are built with the
project's own document and counting functions, so they look like what the sink writes.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch, helpers

from sinks.indices import ensure_indices
from tests.fakes.paths import SEED_PAPERS
from trending_arxiv.core import counting
from trending_arxiv.core.documents import counts_document, mention_document, metadata_document
from trending_arxiv.core.models import Mention, parse_utc
from trending_arxiv.settings import CommonSettings

# The 2016 page's moment: every sample post is before it.
SEED_AS_OF = datetime(2016, 2, 9, 0, 0, tzinfo=UTC)
EVIL_TEXT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2"> 1511.06909'
EVIL_PAPER = "1511.06909"


def seed_papers() -> list[dict[str, Any]]:
    papers: list[dict[str, Any]] = json.loads(SEED_PAPERS.read_text(encoding="utf-8"))
    return papers


def seed_mentions(paper: dict[str, Any]) -> list[Mention]:
    """`seed_posts` mentions of one paper between its submission and SEED_AS_OF."""
    count = int(paper["seed_posts"])
    start = parse_utc(paper["published"]) + timedelta(hours=2)
    span = (SEED_AS_OF - timedelta(minutes=1) - start) / max(count, 1)
    step = min(timedelta(minutes=37), span)
    accounts = max(1, (count * 3) // 4)
    mentions = []
    for i in range(count):
        account = (i * 7) % accounts
        is_bluesky = i % 5 == 4
        handle = f"reader{account}" + (".bsky.social" if is_bluesky else "")
        if is_bluesky:
            post_id = f"at://did:plc:seed{account:04d}/app.bsky.feed.post/3k{paper['arxiv_id'][-4:]}{i:04d}"
        else:
            digest = zlib.crc32(f"{paper['arxiv_id']}/{i}".encode())
            post_id = f"69{digest:010d}{i:06d}"
        text = f"Worth a read: {paper['title']} https://arxiv.org/abs/{paper['arxiv_id']}"
        if paper["arxiv_id"] == EVIL_PAPER and i == count - 1:
            text = EVIL_TEXT
        mentions.append(
            Mention(
                post_id=post_id,
                arxiv_id=paper["arxiv_id"],
                created_at=start + step * i,
                source="bluesky" if is_bluesky else "x",
                kind="repost" if i % 3 == 2 else "post",
                author_id=f"did:plc:seed{account:04d}" if is_bluesky else str(10_000 + account),
                author_handle=handle,
                text=text,
            )
        )
    return mentions


def seed_documents(as_of: datetime = SEED_AS_OF) -> tuple[list[dict], list[dict]]:
    """(paper documents, mention documents) of the 20 seed papers."""
    papers: list[dict] = []
    mentions: list[dict] = []
    for paper in seed_papers():
        paper_mentions = seed_mentions(paper)
        state = counting.new_paper_state()
        counting.apply_mentions(state, paper_mentions, {})
        update = counting.count_update(paper["arxiv_id"], state, as_of)
        metadata = {k: v for k, v in paper.items() if k != "seed_posts"}
        papers.append({**metadata_document(paper["arxiv_id"], metadata), **counts_document(update)})
        mentions.extend(
            {"_id": m.document_id, **mention_document(m, metadata)} for m in paper_mentions
        )
    return papers, mentions


def index_seed(es: Elasticsearch, settings: CommonSettings) -> tuple[list[dict], list[dict]]:
    """Create the namespace's indices and index the seed documents (refreshed)."""
    ensure_indices(es, settings)
    papers, mentions = seed_documents()
    actions: list[dict[str, Any]] = [
        {"_index": settings.indices.papers, "_id": p["arxiv_id"], "_source": p} for p in papers
    ]
    for doc in mentions:
        body = {k: v for k, v in doc.items() if k != "_id"}
        actions.append({"_index": settings.indices.mentions, "_id": doc["_id"], "_source": body})
    helpers.bulk(es, actions, refresh="wait_for")
    return papers, mentions


def drop_namespace(es: Elasticsearch, settings: CommonSettings) -> None:
    names = settings.indices
    for index in (names.papers, names.mentions, names.follows, f"{settings.namespace}-alerts"):
        es.options(ignore_status=404).indices.delete(index=index)
        es.options(ignore_status=404).indices.delete_index_template(name=index)


@contextmanager
def seeded_namespace(prefix: str = "webtest") -> Iterator[tuple[Elasticsearch, CommonSettings]]:
    """A fresh namespace holding the seed data on the local Elasticsearch; dropped after."""
    from trending_arxiv.devstack.stack import ensure_stack

    endpoints = ensure_stack()
    settings = CommonSettings(
        elasticsearch_url=endpoints.elasticsearch_url,
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        namespace=f"{prefix}-{uuid.uuid4().hex[:8]}",
    )
    es = Elasticsearch(**settings.elasticsearch_client_kwargs())
    try:
        index_seed(es, settings)
        yield es, settings
    finally:
        drop_namespace(es, settings)
        es.close()
