"""Credentials: the settings carry Elasticsearch basic auth, API key and CA file to the
client, and no token or password ever shows in a process's output, failures included."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import certifi
import pytest
from elasticsearch import Elasticsearch
from elasticsearch.serializer import OrjsonSerializer
from pydantic import SecretStr

from tests.faults.servers import free_port
from trending_arxiv.settings import CommonSettings

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "trending_arxiv.cli.main"]


def secrets() -> dict[str, str]:
    tag = uuid.uuid4().hex
    return {
        "TRENDING_X_BEARER_TOKEN": f"xbearer{tag}",
        "TRENDING_MASTODON_ACCESS_TOKEN": f"mastotok{tag}",
        "ELASTICSEARCH_PASSWORD": f"espassword{tag}",
        "ELASTICSEARCH_API_KEY": f"esapikey{tag}",
    }


# -- settings -> client -------------------------------------------------------------------


def test_basic_auth_and_ca_file_reach_the_client() -> None:
    settings = CommonSettings(
        elasticsearch_url="https://es.internal:9200",
        elasticsearch_username="trending",
        elasticsearch_password=SecretStr("s3cret-pw"),
        elasticsearch_ca_certs=certifi.where(),
    )
    kwargs = settings.elasticsearch_client_kwargs()
    assert isinstance(kwargs["serializer"], OrjsonSerializer)
    assert {key: value for key, value in kwargs.items() if key != "serializer"} == {
        "hosts": ["https://es.internal:9200"],
        "basic_auth": ("trending", "s3cret-pw"),
        "ca_certs": certifi.where(),
    }
    client = Elasticsearch(**kwargs)
    assert (
        client._headers["authorization"]
        == "Basic " + base64.b64encode(b"trending:s3cret-pw").decode()
    )
    node = client.transport.node_pool.all()[0]
    assert node.config.scheme == "https" and node.config.ca_certs == certifi.where()


def test_api_key_wins_over_basic_auth() -> None:
    settings = CommonSettings(
        elasticsearch_username="trending",
        elasticsearch_password=SecretStr("pw"),
        elasticsearch_api_key=SecretStr("a2V5OnNlY3JldA=="),
    )
    kwargs = settings.elasticsearch_client_kwargs()
    assert kwargs["api_key"] == "a2V5OnNlY3JldA==" and "basic_auth" not in kwargs
    client = Elasticsearch(**kwargs)
    assert client._headers["authorization"] == "ApiKey a2V5OnNlY3JldA=="


def test_settings_read_credentials_from_the_environment_and_never_print_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = secrets()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ELASTICSEARCH_USERNAME", "trending")
    monkeypatch.setenv("ELASTICSEARCH_CA_CERTS", certifi.where())
    from producers.settings import MastodonProducerSettings, XProducerSettings

    common = CommonSettings()
    assert common.elasticsearch_client_kwargs()["api_key"] == values["ELASTICSEARCH_API_KEY"]
    assert common.elasticsearch_client_kwargs()["ca_certs"] == certifi.where()
    x = XProducerSettings()
    assert x.bearer_token().get_secret_value() == values["TRENDING_X_BEARER_TOKEN"]
    mastodon = MastodonProducerSettings()
    shown = " ".join(
        [
            repr(common),
            str(common),
            common.model_dump_json(),
            repr(x),
            str(x.model_dump()),
            repr(mastodon),
            mastodon.model_dump_json(),
        ]
    )
    for name, value in values.items():
        assert value not in shown, name


# -- failure paths of the real processes ---------------------------------------------------


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            CLI + args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _finish(process: subprocess.Popen[bytes], seconds: float, log: Path) -> tuple[int | None, str]:
    """Let a CLI command run up to `seconds` (then SIGTERM); (exit code, all its output)."""
    try:
        code: int | None = process.wait(seconds)
    except subprocess.TimeoutExpired:
        code = None
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return code, log.read_bytes().decode("utf-8", errors="replace")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRENDING_", "ELASTIC"))}
    env.update(TRENDING_LOG_LEVEL="DEBUG", ELASTICSEARCH_USERNAME="elastic", **extra)
    return env


def test_no_secret_in_any_output_when_servers_are_wrong_or_down(
    stack_endpoints: tuple[str, str], namespace: str, tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    values = secrets()
    dead_es = f"http://127.0.0.1:{free_port()}"
    dead_kafka = f"127.0.0.1:{free_port()}"
    runs = {
        # Elasticsearch unreachable: `top` fails with a message, the sink gives up.
        "top": (["top", "--json"], _env(ELASTICSEARCH_URL=dead_es, **values), 30),
        "sink": (
            ["sink"],
            _env(KAFKA_BOOTSTRAP_SERVERS=kafka, ELASTICSEARCH_URL=dead_es, **values),
            25,
        ),
        # Kafka unreachable: the worker waits (and logs why).
        "worker": (
            ["worker"],
            _env(
                KAFKA_BOOTSTRAP_SERVERS=dead_kafka,
                ELASTICSEARCH_URL=es_url,
                TRENDING_WORKER_DATA_DIR=str(tmp_path / "faust"),
                **values,
            ),
            15,
        ),
        # X unreachable: the producer sends its bearer token nowhere and logs the failure.
        "x": (
            ["produce", "x", "--mode", "search", "--api-base-url", dead_es],
            _env(KAFKA_BOOTSTRAP_SERVERS=kafka, TRENDING_NAMESPACE=namespace, **values),
            15,
        ),
    }
    # All at once (each mostly waits on a refused connection), then each for its time.
    started = {
        name: _start(args, env, tmp_path / f"{name}.log") for name, (args, env, _) in runs.items()
    }
    began = time.monotonic()
    processes = {
        name: _finish(
            started[name], max(1.0, seconds - (time.monotonic() - began)), tmp_path / f"{name}.log"
        )
        for name, (_, _, seconds) in runs.items()
    }
    for name, (_, output) in processes.items():
        assert output.strip(), f"{name} printed nothing: the failure path was not reached"
        for secret_name, value in values.items():
            assert value not in output, f"{secret_name} appears in the output of {name}"
    top_code, top_output = processes["top"]
    assert top_code not in (0, None) and "error" in top_output.lower()


def test_password_inside_the_elasticsearch_url_is_not_echoed(tmp_path: Path) -> None:
    """`ELASTICSEARCH_URL=https://user:password@host` is a common way to pass credentials."""
    password = f"urlpassword{uuid.uuid4().hex}"
    dead_es = f"http://elastic:{password}@127.0.0.1:{free_port()}"
    log = tmp_path / "top.log"
    code, output = _finish(_start(["top", "--json"], _env(ELASTICSEARCH_URL=dead_es), log), 30, log)
    assert code not in (0, None)
    assert password not in output, output[-2000:]
