"""Fault tests: a private stack (see `servers.py`) started once per session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.faults.servers import PrivateStack, private_stack_settings
from trending_arxiv.devstack.stack import StackError


@pytest.fixture(scope="session")
def private_stack() -> Iterator[PrivateStack]:
    """Kafka and Elasticsearch of our own on free ports; stopped and wiped at the end."""
    stack = PrivateStack(private_stack_settings())
    stack.down()  # leftovers of an interrupted run
    try:
        stack.up()
    except StackError as error:
        stack.down()
        pytest.fail(f"could not start the private Kafka/Elasticsearch: {error}")
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture
def private_namespace() -> str:
    """A fresh namespace; the private stack's data is wiped at the end, so no cleanup."""
    return f"fault-{uuid.uuid4().hex[:10]}"
