"""The harness for pipeline processes: a namespace's worker and sink as child processes.

Used by `trending-arxiv demo`, the tests and the benchmarks: each child runs
`python -m trending_arxiv.cli.main <args>` in a session of its own with its output in
`<log_dir>/<name>.log`, and `stop` ends them all (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from trending_arxiv.devstack.processes import parent_death_signal


class ProcessExited(RuntimeError):
    """A pipeline process ended while it should still run; the message names its log."""


@dataclass
class PipelineProcesses:
    """The worker and sink child processes of one namespace, with their logs."""

    env: dict[str, str]
    log_dir: Path
    children: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> None:
        """Start `trending-arxiv ARGS` as `name` (logging to `name`.log), with `env` over
        the pipeline's environment for this process alone."""
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "trending_arxiv.cli.main", *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Dies with us, even when we are killed with SIGKILL (Linux).
            preexec_fn=parent_death_signal(),
        )
        self.children.append((name, process, log))

    def check_alive(self) -> None:
        """Raise `ProcessExited` if any child has ended."""
        for name, process, _ in self.children:
            if process.poll() is not None:
                raise ProcessExited(
                    f"the {name} exited with status {process.returncode}; "
                    f"see {self.log_dir / (name + '.log')}"
                )

    def stop(self, timeout: float = 20.0) -> None:
        for _, process, _ in self.children:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for _, process, log in self.children:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def pipeline_env(
    endpoints_kafka: str, endpoints_es: str, namespace: str, data_dir: Path
) -> dict[str, str]:
    """The environment of a namespace's pipeline processes (low-latency demo settings)."""
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=endpoints_kafka,
        ELASTICSEARCH_URL=endpoints_es,
        TRENDING_NAMESPACE=namespace,
        TRENDING_WORKER_DATA_DIR=str(data_dir / "faust"),
        TRENDING_SINK_FLUSH_SECONDS="0.2",
        TRENDING_BATCH_TIMEOUT_SECONDS="0.1",
        # Offline: metadata comes from the bundled catalog, not from the arXiv API.
        TRENDING_ARXIV_ENABLED=os.environ.get("TRENDING_ARXIV_ENABLED", "false"),
    )
    return env
