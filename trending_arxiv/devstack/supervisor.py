"""Supervise the pipeline's processes: restart with back-off, stop in order, leave nothing.

Each child is a `trending-arxiv <subcommand>` (see `processes.spawn_cli`). A child that
exits or is killed is started again after a back-off that doubles with each quick death
(0.5 s up to 30 s; a child that ran a minute starts over at 0.5 s); one that exits 0 and
is marked `finishes` (a replay that reached its end) is done, not restarted. `stop()`
stops the producers first — they flush to Kafka and save their checkpoints — then the
rest.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trending_arxiv.core.models import to_utc_iso
from trending_arxiv.devstack.processes import spawn_cli, stop_processes

log = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
# A child that ran this long before dying is restarted after the first back-off again.
HEALTHY_RUN_SECONDS = 60.0


@dataclass(frozen=True)
class ChildSpec:
    """One supervised process: its name, role (consumer group it belongs to) and command."""

    name: str
    args: tuple[str, ...]
    role: str = ""
    producer: bool = False  # stopped first, so it saves its checkpoint while Kafka is up
    finishes: bool = False  # exit status 0 means done (a replay), not a crash
    env: dict[str, str] = field(default_factory=dict)
    # Runs before a restart after a crash (e.g. drop the dead consumer from its group).
    before_restart: Callable[[], str | None] | None = None


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    state: str = "starting"  # starting, running, backoff, done, stopped
    restarts: int = 0
    started: float = 0.0
    started_at: str | None = None
    next_start: float = 0.0
    backoff: float = BACKOFF_FIRST_SECONDS
    last_exit: int | None = None

    def row(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "role": self.spec.role or self.spec.name,
            "pid": self.process.pid if self.process and self.state == "running" else None,
            "state": self.state,
            "restarts": self.restarts,
            "started_at": self.started_at,
            "last_exit": self.last_exit,
            "command": ["trending-arxiv", *self.spec.args],
        }


class Supervisor:
    """Starts every child, restarts the ones that die, stops them all in order."""

    def __init__(
        self,
        specs: list[ChildSpec],
        env: dict[str, str],
        log_dir: Path,
        on_event: Callable[[str], None] | None = None,
        spawn: Callable[[tuple[str, ...], dict[str, str], Path], subprocess.Popen[bytes]] = (
            spawn_cli
        ),
    ) -> None:
        self.spawn = spawn  # how a child's command runs (`trending-arxiv <args>` by default)
        self.children = [Child(spec) for spec in specs]
        self.env = env
        self.log_dir = log_dir
        self.on_event = on_event or log.info

    def log_path(self, child: Child) -> Path:
        return self.log_dir / f"{child.spec.name}.log"

    def _start(self, child: Child) -> None:
        child.process = self.spawn(
            child.spec.args, {**self.env, **child.spec.env}, self.log_path(child)
        )
        child.started = time.monotonic()
        child.started_at = to_utc_iso(datetime.now(UTC))
        child.state = "running"

    def start(self) -> None:
        for child in self.children:
            self._start(child)
            self.on_event(f"started {child.spec.name} (pid {child.process and child.process.pid})")

    def tick(self) -> None:
        """Notice children that exited; start again those whose back-off is over."""
        now = time.monotonic()
        for child in self.children:
            if child.state == "running" and child.process is not None:
                code = child.process.poll()
                if code is None:
                    continue
                child.last_exit = code
                if code == 0 and child.spec.finishes:
                    child.state = "done"
                    self.on_event(f"{child.spec.name} finished")
                    continue
                if now - child.started >= HEALTHY_RUN_SECONDS:
                    child.backoff = BACKOFF_FIRST_SECONDS
                child.state = "backoff"
                child.next_start = now + child.backoff
                self.on_event(
                    f"{child.spec.name} (pid {child.process.pid}) exited with {_exit_text(code)};"
                    f" restarting in {child.backoff:g} s (see {self.log_path(child)})"
                )
                child.backoff = min(BACKOFF_MAX_SECONDS, child.backoff * 2)
            elif child.state == "backoff" and now >= child.next_start:
                child.restarts += 1
                self._before_restart(child)
                self._start(child)
                self.on_event(
                    f"restarted {child.spec.name} (pid {child.process and child.process.pid},"
                    f" restart {child.restarts})"
                )

    def _before_restart(self, child: Child) -> None:
        if child.spec.before_restart is None:
            return
        try:
            note = child.spec.before_restart()
        except Exception as error:  # a failed clean-up delays the restart, never stops it
            note = f"before restarting {child.spec.name}: {type(error).__name__}: {error}"
        if note:
            self.on_event(note)

    def stop(self, timeout: float = 30.0) -> None:
        """Producers first (they save checkpoints), then everything else."""
        for producers_pass in (True, False):
            group = [c for c in self.children if c.spec.producer == producers_pass and c.process]
            stop_processes([c.process for c in group if c.process is not None], timeout)
            for child in group:
                if child.state in ("running", "backoff", "starting"):
                    child.state = "stopped"
                    child.last_exit = child.process.returncode if child.process else None

    def rows(self) -> list[dict[str, Any]]:
        return [child.row() for child in self.children]


def _exit_text(code: int) -> str:
    if code < 0:
        import signal

        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"
