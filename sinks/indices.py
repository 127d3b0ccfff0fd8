"""Index templates for papers, mentions and follow lists, created at start-up.

Only features of the minimal Elasticsearch distribution are used (no scripts, no
language analyzers, no rank_feature), so the same templates work on the local stack
and on the full Elasticsearch of docker-compose.
"""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch

from trending_arxiv.core.models import WINDOWS
from trending_arxiv.settings import CommonSettings

log = logging.getLogger(__name__)

_KEYWORD = {"type": "keyword"}
# The keyword twins of title and authors serve terms aggregations (Kibana's "Top papers by
# title") and sorting, never term queries: doc values only, no terms dictionary. Each
# paper's title is a unique term, so an indexed twin costs every load a term per paper
# (~20% of Elasticsearch's CPU per paper in the catalog-load bench).
_TEXT_WITH_KEYWORD = {
    "type": "text",
    "fields": {"keyword": {"type": "keyword", "index": False, "ignore_above": 512}},
}
# Links shown with a paper, derived from its ID: kept in _source, never searched.
_STORED_ONLY = {"type": "keyword", "index": False, "doc_values": False}
# A post's own id and the id it reposts or quotes: sorted on (the tie-break of every
# mentions listing) and aggregated (Bluesky feeds' reposted posts), never looked up by
# term. Doc values serve both; indexed, each post id was a term of its own (~5% of
# Elasticsearch's CPU a mention document, session 18). A term query on them still works,
# from the doc values.
_SORTED_ONLY = {"type": "keyword", "index": False}
_PER_WINDOW = {"properties": {window: {"type": "integer"} for window in WINDOWS}}

PAPERS_MAPPINGS: dict[str, Any] = {
    "dynamic": "false",
    "properties": {
        "arxiv_id": _KEYWORD,
        "title": _TEXT_WITH_KEYWORD,
        "abstract": {"type": "text"},
        "authors": _TEXT_WITH_KEYWORD,
        "categories": _KEYWORD,
        "primary_category": _KEYWORD,
        "published": {"type": "date"},
        "updated": {"type": "date"},
        "doi": _KEYWORD,
        "journal_ref": {"type": "text"},
        "comment": {"type": "text"},
        "abs_url": _STORED_ONLY,
        "pdf_url": _STORED_ONLY,
        "metadata_status": _KEYWORD,
        "metadata_source": _KEYWORD,
        "enriched_at": {"type": "date"},
        "posts": _PER_WINDOW,
        "accounts": _PER_WINDOW,
        "trend_score": {"type": "double"},
        # Sorts by trend score at any moment without republishing as time passes.
        "trend_rank": {"type": "double"},
        "velocity": {"type": "double"},
        "counts_as_of": {"type": "date"},
        "first_seen": {"type": "date"},
        "last_seen": {"type": "date"},
        "sources": {"type": "object", "dynamic": "true"},
    },
}

MENTIONS_MAPPINGS: dict[str, Any] = {
    "dynamic": "false",
    "properties": {
        "@timestamp": {"type": "date"},
        "post_id": _SORTED_ONLY,
        # Every mentions-path ranking is a terms aggregation on arxiv_id: its global
        # ordinals are built at refresh time, not by the first ranking after each refresh.
        "arxiv_id": {"type": "keyword", "eager_global_ordinals": True},
        "source": _KEYWORD,
        "kind": _KEYWORD,
        "author_id": _KEYWORD,
        "author_handle": _KEYWORD,
        "account": _KEYWORD,
        "text": {"type": "text"},
        "ref_post_id": _SORTED_ONLY,
        # The post's link, shown with it and never searched. Indexed, it was a unique
        # term a mention: ~10% of Elasticsearch's CPU indexing mention documents.
        "url": _STORED_ONLY,
        "categories": _KEYWORD,
        "primary_category": _KEYWORD,
    },
}

FOLLOWS_MAPPINGS: dict[str, Any] = {
    "dynamic": "false",
    "properties": {
        "user": _KEYWORD,
        "accounts": _KEYWORD,
        "updated_at": {"type": "date"},
    },
}


def ensure_indices(
    es: Elasticsearch, settings: CommonSettings, refresh_interval: str = "1s"
) -> None:
    """Create (or update) the templates and the indices of this namespace; idempotent."""
    names = settings.indices
    index_settings = {
        "number_of_shards": settings.index_shards,
        "number_of_replicas": settings.index_replicas,
        "refresh_interval": refresh_interval,
    }
    for index, mappings in (
        (names.papers, PAPERS_MAPPINGS),
        (names.mentions, MENTIONS_MAPPINGS),
        (names.follows, FOLLOWS_MAPPINGS),
    ):
        es.indices.put_index_template(
            name=index,
            index_patterns=[index],
            template={"settings": index_settings, "mappings": mappings},
            priority=100,
        )
        if not es.indices.exists(index=index):
            es.indices.create(index=index)
        else:
            _map_new_fields(es, index, mappings["properties"])


def _map_new_fields(es: Elasticsearch, index: str, properties: dict[str, Any]) -> None:
    """Map in `index` the fields added since it was created (adding a field, or a keyword
    twin, is always allowed).

    A field whose parameters changed since (the mentions' `url`, `post_id`, `ref_post_id`:
    no longer indexed) keeps its old mapping in an existing index: Elasticsearch changes
    no field in place, and the old mapping still serves every query. A new index takes
    the template's. When the whole mapping is refused, each field is put alone, so only
    the changed ones are left.
    """
    try:
        es.indices.put_mapping(index=index, properties=properties)
        return
    except BadRequestError:
        pass
    kept: list[str] = []
    for name, spec in properties.items():
        try:
            es.indices.put_mapping(index=index, properties={name: spec})
        except BadRequestError:
            kept.append(name)
    log.warning("index %s keeps the mapping it was created with for %s", index, kept)
