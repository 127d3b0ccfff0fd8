"""docker-compose.yml stays valid and consistent with the local stack.

Docker can't run here, so these checks parse the file: the services, the environment
variable names our settings read, the published ports, healthchecks, named volumes, the
commands, and that the Kafka/Elasticsearch versions are those `trending-arxiv stack up` runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.paths import REPO
from trending_arxiv.settings import CommonSettings

COMPOSE = REPO / "docker-compose.yml"

INFRA = ("kafka", "elasticsearch", "kibana")
OURS = ("producer", "worker", "sink", "api", "alerts", "kibana-setup")
ONE_SHOT = ("producer", "kibana-setup")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (compose accepts a mapping or KEY=VALUE list)."""
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def published_ports(services: dict[str, dict[str, Any]]) -> dict[int, str]:
    """Host port -> service name, from the short `HOST:CONTAINER` syntax."""
    ports: dict[int, str] = {}
    for name, service in services.items():
        for spec in service.get("ports", []):
            host = str(spec).split(":")[-2]
            ports[int(host)] = name
    return ports


def image_version(service: dict[str, Any]) -> str:
    return str(service["image"]).rsplit(":", 1)[1]


def test_every_service_exists(services: dict[str, dict[str, Any]]) -> None:
    assert set(INFRA) | set(OURS) <= set(services)


def test_our_processes_get_the_local_stack_variable_names(
    services: dict[str, dict[str, Any]],
) -> None:
    # The names the settings really read (aliases), so compose can't drift from the code.
    fields = CommonSettings.model_fields
    kafka_alias = fields["kafka_bootstrap_servers"].validation_alias
    es_alias = fields["elasticsearch_url"].validation_alias
    assert "KAFKA_BOOTSTRAP_SERVERS" in str(kafka_alias)
    assert "ELASTICSEARCH_URL" in str(es_alias)
    for name in OURS:
        env = environment(services[name])
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert env["ELASTICSEARCH_URL"] == "http://elasticsearch:9200", name
        assert env["TRENDING_NAMESPACE"], name
        # The namespace must be one the settings accept.
        CommonSettings(namespace=env["TRENDING_NAMESPACE"])


def test_our_processes_run_trending_arxiv_subcommands(
    services: dict[str, dict[str, Any]],
) -> None:
    expected = {
        "producer": ["produce", "replay"],
        "worker": ["worker"],
        "sink": ["sink"],
        "api": ["serve"],
        "alerts": ["alerts"],
        "kibana-setup": ["kibana", "import"],
    }
    for name, words in expected.items():
        command = services[name]["command"]
        assert isinstance(command, list), name
        assert command[0] == "trending-arxiv", name
        assert command[1 : 1 + len(words)] == words, name
        assert "build" in services[name], name
    replayed = Path(services["producer"]["command"][-1])
    # /app is the repo root inside the image; the sample must exist there.
    assert replayed.parts[:2] == ("/", "app")
    assert (REPO / replayed.relative_to("/app")).is_file()


def test_standard_ports_are_published(services: dict[str, dict[str, Any]]) -> None:
    ports = published_ports(services)
    assert ports[9092] == "kafka"
    assert ports[9200] == "elasticsearch"
    assert ports[5601] == "kibana"
    assert ports[8000] == "api"
    # Containers reach Kafka on the in-network listener, the host on localhost:9092.
    env = environment(services["kafka"])
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_published_ports_are_bound_to_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    # Security is off ("local use only"): nothing may listen on every interface.
    specs = [(name, str(spec)) for name, s in services.items() for spec in s.get("ports", [])]
    assert len(specs) >= 4
    for name, spec in specs:
        assert spec.startswith("127.0.0.1:") and spec.count(":") == 2, (name, spec)


def test_our_long_running_processes_are_healthchecked_by_our_command(
    services: dict[str, dict[str, Any]],
) -> None:
    from typer.main import get_command

    from trending_arxiv.cli.main import HealthRole, _register_subapps, app

    _register_subapps()
    roles = {role.value for role in HealthRole}
    click_command = get_command(app)
    for name in ("worker", "sink", "alerts", "api"):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD", name
        assert test[1:4] == ["trending-arxiv", "healthcheck", name], name
        assert name in roles
        # The healthcheck's arguments parse with the real command line.
        subcommand = click_command.commands["healthcheck"]  # type: ignore[attr-defined]
        context = subcommand.make_context("healthcheck", list(test[3:]))
        assert context.params["role"] == HealthRole(name), name
    assert "http://localhost:8000" in services["api"]["healthcheck"]["test"]


def test_infrastructure_is_healthchecked_and_waited_for(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in INFRA:
        test = services[name]["healthcheck"]["test"]
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert "kafka-broker-api-versions" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert "_cluster/health" in " ".join(services["elasticsearch"]["healthcheck"]["test"])
    for name in OURS:
        depends = services[name]["depends_on"]
        for infra in ("kafka", "elasticsearch"):
            assert depends[infra]["condition"] == "service_healthy", (name, infra)
    assert services["kibana-setup"]["depends_on"]["kibana"]["condition"] == "service_healthy"
    assert services["kibana"]["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no", name


def test_named_volumes_hold_kafka_and_elasticsearch_data(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose["volumes"])
    for name, target in (
        ("kafka", "/var/lib/kafka/data"),
        ("elasticsearch", "/usr/share/elasticsearch/data"),
    ):
        mounts = dict(str(v).split(":", 1) for v in services[name]["volumes"])
        volume = next(src for src, dst in mounts.items() if dst == target)
        assert volume in declared, name
    assert environment(services["kafka"])["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"


def test_single_node_local_settings(services: dict[str, dict[str, Any]]) -> None:
    es = environment(services["elasticsearch"])
    assert es["discovery.type"] == "single-node"
    assert es["xpack.security.enabled"] == "false"
    assert re.search(r"-Xmx\d+[mg]", es["ES_JAVA_OPTS"])
    kafka = environment(services["kafka"])
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", kafka["CLUSTER_ID"])  # base64url UUID
    kibana = environment(services["kibana"])
    assert "http://elasticsearch:9200" in kibana["ELASTICSEARCH_HOSTS"]


def test_versions_match_the_local_stack(services: dict[str, dict[str, Any]]) -> None:
    from trending_arxiv.devstack.stack import StackSettings

    # Field defaults, not an instance: TRENDING_STACK_* in the environment must not matter.
    fields = StackSettings.model_fields
    kafka_version = fields["kafka_version"].default
    es_field = "es_version" if "es_version" in fields else "elasticsearch_version"
    es_version = fields[es_field].default

    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert image_version(services["kafka"]) == kafka_version
    assert kafka_version.startswith("4.0.")
    assert services["elasticsearch"]["image"].startswith(
        "docker.elastic.co/elasticsearch/elasticsearch:"
    )
    assert image_version(services["elasticsearch"]) == es_version
    assert es_version.startswith("9.")
    assert services["kibana"]["image"].startswith("docker.elastic.co/kibana/kibana:")
    assert image_version(services["kibana"]) == es_version


def test_dockerfile_builds_our_package() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert re.search(r"^RUN pip install \.$", dockerfile, re.M)
    # Every package setup.cfg installs is copied into the image.
    for package in ("trending_arxiv", "producers", "streams", "sinks"):
        assert re.search(rf"^COPY {package} ", dockerfile, re.M), package
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", ".stack", ".env", ".git"} <= set(ignored)


def test_the_image_compiles_the_counting_core_in_a_stage_of_its_own() -> None:
    """A C compiler and mypy in a build stage; the image takes only the build, which
    `pip install .` installs with the package (setup.cfg's package_data)."""
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    assert [stage.split("\n", 1)[0] for stage in stages] == [
        "python:3.11-slim AS source",
        "source AS native",
        "source",
    ]
    native, image = stages[1], stages[2]
    assert re.search(r"apt-get install .*\bgcc\b", native)
    assert "COPY tools/build_native.py ./tools/build_native.py" in native
    assert re.search(r"^RUN .*python tools/build_native\.py$", native, re.M)
    copied = "COPY --from=native /app/trending_arxiv/core/_native ./trending_arxiv/core/_native"
    assert copied in image
    assert image.index(copied) < image.index("RUN pip install .")
    assert "gcc" not in stages[0] + image
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    # The build script enters the context; a local build does not (the image makes its own).
    assert ignored.index("!tools/build_native.py") > ignored.index("tools")
    assert "trending_arxiv/core/_native" in ignored
