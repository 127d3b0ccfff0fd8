"""The index templates on the real Elasticsearch: what a new index maps, and what start-up
does to an index created by an older version (fields added since, fields changed since)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import msgspec
import pytest
from elasticsearch import Elasticsearch

from sinks.indices import MENTIONS_MAPPINGS, ensure_indices
from trending_arxiv.core.documents import mention_document
from trending_arxiv.core.models import Mention
from trending_arxiv.settings import CommonSettings


@pytest.fixture
def env(namespace: str, stack_endpoints: tuple[str, str]) -> tuple[Elasticsearch, CommonSettings]:
    kafka, es_url = stack_endpoints
    settings = CommonSettings(
        namespace=namespace, kafka_bootstrap_servers=kafka, elasticsearch_url=es_url
    )
    return Elasticsearch(es_url), settings


def _mention() -> Mention:
    return Mention(
        post_id="1800000000000000001",
        arxiv_id="2401.00001",
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        source="x",
        kind="post",
        author_id="42",
        author_handle="someone",
        text="a paper",
        ref_post_id="1800000000000000000",
    )


def test_a_mention_link_is_kept_for_display_and_not_indexed(
    env: tuple[Elasticsearch, CommonSettings],
) -> None:
    es, settings = env
    ensure_indices(es, settings)
    index = settings.indices.mentions
    mention = _mention()
    doc = mention_document(mention, None)
    es.index(index=index, id=mention.document_id, document=doc, refresh=True)
    caps = es.field_caps(index=index, fields=["url"])["fields"]
    assert caps["url"]["keyword"]["searchable"] is False
    assert caps["url"]["keyword"]["aggregatable"] is False
    source = es.get(index=index, id=mention.document_id)["_source"]
    assert source["url"] == doc["url"] and source["url"].startswith("https://")


def test_post_ids_are_not_indexed_yet_sort_aggregate_and_match(
    env: tuple[Elasticsearch, CommonSettings],
) -> None:
    """`post_id` and `ref_post_id` keep doc values only: what the listings sort on and the
    feeds aggregate on works, and a term query on them still finds the post."""
    es, settings = env
    ensure_indices(es, settings)
    index = settings.indices.mentions
    mapped = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapped["post_id"] == {"type": "keyword", "index": False}
    assert mapped["ref_post_id"] == {"type": "keyword", "index": False}
    older = _mention()
    newer = msgspec.structs.replace(older, post_id="1800000000000000002")
    for mention in (newer, older):
        es.index(index=index, id=mention.document_id, document=mention_document(mention, None))
    es.indices.refresh(index=index)
    listed = es.search(index=index, sort=[{"@timestamp": "asc"}, {"post_id": "asc"}])
    assert [hit["_source"]["post_id"] for hit in listed["hits"]["hits"]] == [
        older.post_id,
        newer.post_id,
    ]
    by_reposted = {"refs": {"terms": {"field": "ref_post_id"}}}
    reposted = es.search(index=index, size=0, aggs=by_reposted)["aggregations"]["refs"]
    assert reposted["buckets"] == [{"key": "1800000000000000000", "doc_count": 2}]
    found = es.search(index=index, query={"term": {"post_id": newer.post_id}})["hits"]
    assert [hit["_id"] for hit in found["hits"]] == [newer.document_id]


def test_start_up_keeps_an_older_index_and_maps_the_fields_added_since(
    env: tuple[Elasticsearch, CommonSettings],
) -> None:
    """An index made before `url` stopped being indexed, and before `primary_category`
    existed: start-up must neither fail on the field it cannot change nor skip the new one."""
    es, settings = env
    index = settings.indices.mentions
    older = copy.deepcopy(MENTIONS_MAPPINGS)
    older["properties"]["url"] = {"type": "keyword"}
    older["properties"]["post_id"] = {"type": "keyword"}
    del older["properties"]["primary_category"]
    es.indices.create(index=index, mappings=older)

    ensure_indices(es, settings)
    ensure_indices(es, settings)  # idempotent

    mapped = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapped["post_id"] == {"type": "keyword"}  # unchanged in place
    caps = es.field_caps(index=index, fields=["url", "primary_category"])["fields"]
    assert caps["url"]["keyword"]["searchable"] is True  # unchanged in place
    assert caps["primary_category"]["keyword"]["searchable"] is True  # added
    template = es.indices.get_index_template(name=index)["index_templates"][0]
    mapped_url = template["index_template"]["template"]["mappings"]["properties"]["url"]
    assert mapped_url["index"] is False  # what a new index gets
