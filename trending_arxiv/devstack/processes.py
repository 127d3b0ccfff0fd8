"""Child processes of ours: `trending-arxiv <subcommand>` started so none outlives its parent.

Every child runs in a session of its own (a Ctrl-C at the terminal reaches only the
parent, which then stops the children in order) and, on Linux, asks the kernel for
SIGTERM when its parent dies (`PR_SET_PDEATHSIG`), so even a parent killed with SIGKILL
leaves nothing behind. The setting survives the worker's in-place re-exec. Linux sends
the signal when the *thread* that started the child ends, so start children from a
thread that lives as long as they should (the main one).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

PR_SET_PDEATHSIG = 1


def parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook asking for SIGTERM when the parent dies (Linux only, else None)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def hook() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return hook


def spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `command` in a session of its own, dying with us, output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=parent_death_signal(),
        )


def spawn_cli(args: Iterable[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `trending-arxiv *args` (see `spawn`)."""
    return spawn([sys.executable, "-m", "trending_arxiv.cli.main", *args], env, log_path)


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM each running process (and its descendants), wait, SIGKILL what is left."""
    processes = list(processes)
    targets: list[psutil.Process] = []
    for process in processes:
        if process.poll() is not None:
            continue
        try:
            parent = psutil.Process(process.pid)
            targets.extend([*parent.children(recursive=True), parent])
        except psutil.NoSuchProcess:
            continue
    for target in reversed(targets):  # the parents first: they stop their own children
        with contextlib.suppress(psutil.NoSuchProcess):
            target.terminate()
    _, alive = psutil.wait_procs(targets, timeout=timeout)
    for target in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            target.kill()
    psutil.wait_procs(alive, timeout=5)
    for process in processes:
        deadline = time.monotonic() + 5
        while process.poll() is None and time.monotonic() < deadline:  # reap: no zombies
            time.sleep(0.05)
