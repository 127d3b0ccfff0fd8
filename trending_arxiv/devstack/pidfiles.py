"""The servers as processes: PID files, liveness, ports, logs, stopping (psutil, no /proc)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from trending_arxiv.devstack.config import StackError, StackSettings


def pid_alive(pid: int) -> bool:
    """True if `pid` runs and is not a zombie (reaping it if it is our own child)."""
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def cmdline(pid: int) -> str:
    """The command line of `pid`, its arguments joined by spaces ("" if unknown)."""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def rss_mb(pid: int) -> float | None:
    try:
        return round(psutil.Process(pid).memory_info().rss / (1024 * 1024), 1)
    except psutil.Error:
        return None


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listener_pid(port: int) -> int | None:
    """PID of the process listening on TCP `port` (None if none, or not ours to see)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for connection in connections:
        if (
            connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and connection.laddr.port == port
            and connection.pid is not None
        ):
            return connection.pid
    return None


def port_owner(port: int) -> str:
    """Best-effort 'pid N (cmd)' of the process listening on `port`, for error messages."""
    pid = listener_pid(port)
    if pid is None:
        return "unknown process"
    return f"pid {pid} ({cmdline(pid)[:160].strip() or '?'})"


def rotate_log(log_file: Path, max_bytes: int = 50 * 1024 * 1024) -> None:
    """Keep one previous log when the current one grows large (stdout logs never rotate)."""
    with contextlib.suppress(OSError):
        if log_file.stat().st_size > max_bytes:
            log_file.replace(log_file.with_suffix(log_file.suffix + ".1"))


def tail(path: Path, lines: int = 30) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:])


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM, wait up to `timeout` seconds, then SIGKILL."""
    try:
        # psutil remembers the process's start time: a recycled PID is never signalled.
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        process.terminate()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(psutil.NoSuchProcess):
        process.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)


def our_pid(pid_file: Path, marker: str, port: int) -> int | None:
    """PID of our server if it runs: from `pid_file`, else from whoever listens on `port`.

    A process is ours when its command line contains `marker` (our config path or home), so a
    recycled PID or a foreign server on the port is never mistaken for ours.
    """
    candidates = []
    with contextlib.suppress(OSError, ValueError):
        candidates.append(int(pid_file.read_text().strip()))
    for pid in candidates:
        if pid_alive(pid) and marker in cmdline(pid):
            return pid
    # The PID file may be gone (deleted folder, crashed `up`) while the server still runs.
    pid_on_port = listener_pid(port)
    if pid_on_port is not None and marker in cmdline(pid_on_port):
        with contextlib.suppress(OSError):
            pid_file.write_text(f"{pid_on_port}\n")
        return pid_on_port
    return None


def check_ports_free(settings: StackSettings, ports: dict[int, str]) -> None:
    for port, role in ports.items():
        if port_open(settings.host, port):
            raise StackError(
                f"port {port} ({role}) on {settings.host} is taken by another process, not by "
                f"this stack: {port_owner(port)}. Stop it, or pick other ports with "
                "TRENDING_STACK_KAFKA_PORT / TRENDING_STACK_KAFKA_CONTROLLER_PORT / "
                "TRENDING_STACK_ES_PORT / TRENDING_STACK_ES_TRANSPORT_PORT; to use a server "
                "that already runs, set KAFKA_BOOTSTRAP_SERVERS or ELASTICSEARCH_URL."
            )


def wait_until(
    ready: Callable[[], bool], *, pid: int, timeout: float, what: str, log_file: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not pid_alive(pid):
            raise StackError(
                f"{what} exited during start-up. Last lines of {log_file}:\n{tail(log_file)}"
            )
        time.sleep(1)
    raise StackError(
        f"{what} did not become ready within {timeout:.0f} s (pid {pid} still runs). "
        f"Last lines of {log_file}:\n{tail(log_file)}"
    )
