"""docker-compose.cluster.yml stays a valid cluster and in step with the code.

As for the single-node file (test_docker_compose.py), Docker can't run here: these
checks parse the file. A KRaft quorum of three with replication 3 and min ISR 2, an
Elasticsearch cluster of three that waits for green, replicated processes, and the
settings that change with a cluster given by the names the settings object reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_docker_compose import environment, image_version
from trending_arxiv.settings import CommonSettings

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "docker-compose.cluster.yml"
SINGLE = REPO / "docker-compose.yml"

BROKERS = ("kafka-1", "kafka-2", "kafka-3")
ES_NODES = ("es-1", "es-2", "es-3")
OURS = ("producer", "worker", "sink", "api", "alerts")


def published_ports(services: dict[str, dict[str, Any]]) -> dict[int, str]:
    """Host port -> service name (`HOST:CONTAINER`, HOST may be a range `A-B`)."""
    ports: dict[int, str] = {}
    for name, service in services.items():
        for spec in service.get("ports", []):
            first, _, last = str(spec).split(":")[-2].partition("-")
            for port in range(int(first), int(last or first) + 1):
                assert port not in ports, f"host port {port} published twice"
                ports[port] = name
    return ports


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = _load(CLUSTER)["services"]
    return found


def test_every_service_exists(services: dict[str, dict[str, Any]]) -> None:
    assert set(BROKERS) | set(ES_NODES) | set(OURS) <= set(services)


def test_kafka_is_a_kraft_quorum_of_three_with_replication_3_and_min_isr_2(
    services: dict[str, dict[str, Any]],
) -> None:
    envs = [environment(services[name]) for name in BROKERS]
    assert sorted(int(env["KAFKA_NODE_ID"]) for env in envs) == [1, 2, 3]
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    for name, env in zip(BROKERS, envs, strict=True):
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}, name
        assert f"INTERNAL://{name}:9092" in env["KAFKA_ADVERTISED_LISTENERS"], name
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2", name
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2", name
        mounts = dict(str(v).split(":", 1) for v in services[name]["volumes"])
        assert mounts[f"{name}-data"] == env["KAFKA_LOG_DIRS"], name
    external = sorted(env["KAFKA_ADVERTISED_LISTENERS"].split("EXTERNAL://")[1] for env in envs)
    ports = published_ports(services)
    for address in external:  # each broker's advertised host port is the one published
        assert ports[int(address.rsplit(":", 1)[1])] in BROKERS


def test_elasticsearch_is_a_cluster_of_three(services: dict[str, dict[str, Any]]) -> None:
    for name in ES_NODES:
        env = environment(services[name])
        assert env["node.name"] == name
        assert env["cluster.initial_master_nodes"].split(",") == list(ES_NODES)
        assert env["discovery.seed_hosts"].split(",") == list(ES_NODES)
        assert "discovery.type" not in env  # single-node would refuse to form a cluster
        assert "wait_for_status=green" in " ".join(services[name]["healthcheck"]["test"])
        assert services[name]["volumes"][0].startswith(f"{name}-data:")


def test_our_processes_get_the_cluster_through_the_settings_names(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in OURS:
        env = environment(services[name])
        assert env["KAFKA_BOOTSTRAP_SERVERS"].split(",") == [f"{b}:9092" for b in BROKERS]
        assert env["ELASTICSEARCH_URL"].split(",") == [f"http://{n}:9200" for n in ES_NODES]
        # The settings object reads every one of them, as these values.
        prefixed = {k: v for k, v in env.items() if k.startswith("TRENDING_")}
        settings = CommonSettings.model_validate(
            {
                "KAFKA_BOOTSTRAP_SERVERS": env["KAFKA_BOOTSTRAP_SERVERS"],
                "ELASTICSEARCH_URL": env["ELASTICSEARCH_URL"],
                **{k.removeprefix("TRENDING_").lower(): v for k, v in prefixed.items()},
            }
        )
        assert settings.topic_partitions == 12, name
        assert settings.topic_replication_factor == 3, name
        assert settings.topic_configs == {"min.insync.replicas": "2"}, name
        assert (settings.index_shards, settings.index_replicas) == (3, 1), name
        assert settings.elasticsearch_client_kwargs()["hosts"] == [
            f"http://{n}:9200" for n in ES_NODES
        ]
        for field in ("topic_replication_factor", "topic_min_insync_replicas", "index_replicas"):
            assert field in CommonSettings.model_fields
        for broker in BROKERS + ES_NODES:
            assert services[name]["depends_on"][broker]["condition"] == "service_healthy"


def test_workers_sinks_and_api_are_replicated(services: dict[str, dict[str, Any]]) -> None:
    replicas = {name: services[name].get("deploy", {}).get("replicas", 1) for name in OURS}
    assert replicas["worker"] >= 2 and replicas["sink"] >= 2 and replicas["api"] >= 2
    partitions = int(environment(services["worker"])["TRENDING_TOPIC_PARTITIONS"])
    assert replicas["worker"] <= partitions  # a worker beyond the partitions would idle
    assert replicas["producer"] == 1 and replicas["alerts"] == 1
    assert "volumes" not in services["worker"]  # replicas must not share a data folder
    api_ports = services["api"]["ports"]
    assert api_ports == ["8000-8001:8000"]  # one host port per replica
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_commands_and_versions_match_the_single_node_file(
    services: dict[str, dict[str, Any]],
) -> None:
    single = _load(SINGLE)["services"]
    expected = {
        "producer": ["produce", "bluesky"],
        "worker": ["worker"],
        "sink": ["sink"],
        "api": ["serve"],
        "alerts": ["alerts"],
    }
    for name, words in expected.items():
        command = services[name]["command"]
        assert command[0] == "trending-arxiv" and command[1 : 1 + len(words)] == words, name
        assert services[name]["image"] == single[name]["image"], name
        assert services[name]["restart"] == "unless-stopped", name
    for name in BROKERS:
        assert image_version(services[name]) == image_version(single["kafka"])
    for name in ES_NODES:
        assert image_version(services[name]) == image_version(single["elasticsearch"])
