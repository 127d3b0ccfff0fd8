"""A private Kafka + Elasticsearch for the fault tests, and stopping/starting one server.

The shared stack (9092/9200) serves every other test, so the tests that kill a server
run their own on free ports, from `.stack/faults` (downloads reused between runs, data
wiped at start and end). `trending_arxiv.devstack.stack` starts and stops both servers together;
killing or stopping just one is done here by the PID in its PID file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.paths import REPO
from trending_arxiv.devstack.config import StackPaths, StackSettings, stack_paths
from trending_arxiv.devstack.elasticsearch import start_elasticsearch
from trending_arxiv.devstack.kafka import start_kafka
from trending_arxiv.devstack.stack import ensure_stack, stack_down

ENDPOINT_VARIABLES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "TRENDING_KAFKA_BOOTSTRAP_SERVERS",
    "ELASTICSEARCH_URL",
    "TRENDING_ELASTICSEARCH_URL",
)


def _log(line: str) -> None:
    print(f"[private stack] {line}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (reaped if it is our child, else absent or a zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return
        time.sleep(0.2)
    raise AssertionError(f"pid {pid} still runs after {timeout}s")


@contextlib.contextmanager
def _without_endpoint_variables() -> Iterator[None]:
    """Hide KAFKA_BOOTSTRAP_SERVERS/ELASTICSEARCH_URL (the shared stack) from ensure_stack."""
    saved = {name: os.environ.pop(name) for name in ENDPOINT_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@dataclass
class PrivateStack:
    """Our own Kafka and Elasticsearch, which the tests may kill and restart."""

    settings: StackSettings
    kafka: str = ""
    es_url: str = ""

    @property
    def paths(self) -> StackPaths:
        return stack_paths(self.settings)

    def up(self) -> None:
        with _without_endpoint_variables():
            endpoints = ensure_stack(self.settings, log=_log)
        self.kafka = endpoints.kafka_bootstrap_servers
        self.es_url = endpoints.elasticsearch_url
        assert self.kafka == self.settings.kafka_address, "the private Kafka was not started"
        assert self.es_url == self.settings.es_url, "the private Elasticsearch was not started"

    def down(self) -> None:
        stack_down(self.settings, log=_log, wipe=True)

    def _pid(self, pid_file: Path) -> int:
        pid = int(pid_file.read_text().strip())
        assert not process_gone(pid), f"{pid_file} names pid {pid}, which is not running"
        return pid

    def kill_kafka(self) -> None:
        """SIGKILL the broker (no clean shutdown, as in a crash)."""
        pid = self._pid(self.paths.kafka_pid)
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 30)

    def restart_kafka(self) -> float:
        """Start Kafka again on the same port and data; returns seconds until it answered."""
        began = time.monotonic()
        start_kafka(self.settings, self.paths, _log)
        return time.monotonic() - began

    def stop_elasticsearch(self) -> None:
        """SIGTERM Elasticsearch (SIGKILL if it lingers) and wait until it is gone."""
        pid = self._pid(self.paths.es_pid)
        os.kill(pid, signal.SIGTERM)
        try:
            wait_gone(pid, 60)
        except AssertionError:
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 30)

    def restart_elasticsearch(self) -> float:
        began = time.monotonic()
        start_elasticsearch(self.settings, self.paths, _log)
        return time.monotonic() - began


def private_stack_settings() -> StackSettings:
    return StackSettings(
        dir=REPO / ".stack" / "faults",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        es_port=free_port(),
        es_transport_port=free_port(),
        # Small heaps: the machine also runs the shared stack.
        kafka_heap="256m",
        es_heap="384m",
    )
