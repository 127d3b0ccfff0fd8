"""Shared test set-up: the real servers and fresh namespaces.

Integration tests run against the real Kafka and Elasticsearch of the local stack
(started here if they are not running, or the ones `KAFKA_BOOTSTRAP_SERVERS` and
`ELASTICSEARCH_URL` point at). They never skip: if the servers cannot be had, they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.paths import REAL_FIXTURES


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    """The recorded third-party payloads (a copy of shared/ sits beside the clone)."""
    if not REAL_FIXTURES.is_dir():
        pytest.fail(f"recorded fixtures not found at {REAL_FIXTURES}")
    return REAL_FIXTURES


@pytest.fixture(scope="session")
def stack_endpoints() -> Iterator[tuple[str, str]]:
    """Kafka and Elasticsearch addresses; starts the local stack when needed."""
    from trending_arxiv.devstack.stack import StackError, ensure_stack

    try:
        endpoints = ensure_stack()
    except StackError as error:
        pytest.fail(f"Kafka/Elasticsearch unavailable: {error}")
    previous = {k: os.environ.get(k) for k in ("KAFKA_BOOTSTRAP_SERVERS", "ELASTICSEARCH_URL")}
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = endpoints.kafka_bootstrap_servers
    os.environ["ELASTICSEARCH_URL"] = endpoints.elasticsearch_url
    yield endpoints.kafka_bootstrap_servers, endpoints.elasticsearch_url
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def namespace(stack_endpoints: tuple[str, str]) -> Iterator[str]:
    """A fresh namespace (topics and indices of its own), removed afterwards."""
    from elasticsearch import Elasticsearch
    from kafka import KafkaAdminClient

    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    kafka, es_url = stack_endpoints
    es = Elasticsearch(es_url)
    try:
        es.options(ignore_status=404).indices.delete(index=f"{name}-*", expand_wildcards="all")
        for template in es.indices.get_index_template(name=f"{name}-*").get("index_templates", []):
            es.indices.delete_index_template(name=template["name"])
    except Exception:  # cleanup is best effort; a failed cleanup must not fail a test
        pass
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        ours = [t for t in admin.list_topics() if t.startswith(name)]
        if ours:
            admin.delete_topics(ours)
    except Exception:
        pass
    finally:
        admin.close()
