"""`trending-arxiv up`: the whole pipeline, live, from one command; `trending-arxiv status`.

`up` starts (or reuses) the local stack, creates the namespace's topics, then runs the
worker, the sink, the chosen producers, the alert deliverer and the web server as
supervised child processes (`supervisor.Supervisor`), showing a live status table.
Ctrl-C or SIGTERM stops them all, producers first. `status` prints the same table (or
JSON) from another terminal; `/healthz` serves the same JSON.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live

from trending_arxiv.core.models import to_utc_iso
from trending_arxiv.devstack.status import (
    RecordsRate,
    gather_status,
    state_path,
    status_table,
    write_state,
)
from trending_arxiv.devstack.supervisor import ChildSpec, Supervisor
from trending_arxiv.settings import CommonSettings

SOURCES = ("bluesky", "mastodon", "x", "replay")
STATUS_EVERY_SECONDS = 2.0
TICK_SECONDS = 0.25


class UpError(RuntimeError):
    """`up` cannot start: the message says what to fix."""


@dataclass(frozen=True)
class Source:
    kind: str
    path: Path | None = None

    @property
    def name(self) -> str:
        return f"replay:{self.path.name}" if self.path else self.kind


def default_sources(environ: dict[str, str]) -> list[Source]:
    """Bluesky (public, no account); X and Mastodon when they are configured."""
    chosen = [Source("bluesky")]
    if _x_configured(environ):
        chosen.append(Source("x"))
    if environ.get("TRENDING_MASTODON_BASE_URL"):
        chosen.append(Source("mastodon"))
    return chosen


def _x_configured(environ: dict[str, str]) -> bool:
    return bool(
        environ.get("TRENDING_X_BEARER_TOKEN") or environ.get("TRENDING_X_BEARER_TOKEN_FILE")
    )


def parse_sources(text: str | None, environ: dict[str, str]) -> list[Source]:
    """`bluesky,mastodon,x,replay:PATH` (any subset; a replay path may not hold a comma)."""
    if not text:
        return default_sources(environ)
    chosen: list[Source] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        kind, _, rest = item.partition(":")
        if kind not in SOURCES:
            raise UpError(f"unknown source {item!r}; choose from bluesky, mastodon, x, replay:PATH")
        if kind == "replay":
            if not rest:
                raise UpError("replay needs a path: replay:FILE or replay:DIR")
            path = Path(rest).expanduser().resolve()
            if not path.exists():
                raise UpError(f"replay input {path} does not exist")
            chosen.append(Source("replay", path))
        elif rest:
            raise UpError(f"{kind} takes no argument (got {item!r})")
        elif kind == "x" and not _x_configured(environ):
            raise UpError(
                "x needs an API bearer token: set TRENDING_X_BEARER_TOKEN_FILE "
                "(or TRENDING_X_BEARER_TOKEN)"
            )
        elif Source(kind) not in chosen:
            chosen.append(Source(kind))
    if not chosen:
        raise UpError("no source given")
    return chosen


def child_specs(
    sources: list[Source],
    port: int,
    host: str,
    alert_rules: Path | None,
    settings: CommonSettings | None = None,
) -> list[ChildSpec]:
    """The processes of a live pipeline, in start order."""
    specs = [
        ChildSpec(
            "worker",
            ("worker",),
            before_restart=_worker_group_cleaner(settings) if settings else None,
        ),
        ChildSpec("sink", ("sink",)),
        ChildSpec("alerts", ("alerts", *(["--rules", str(alert_rules)] if alert_rules else []))),
        ChildSpec("web", ("serve", "--host", host, "--port", str(port))),
    ]
    for number, source in enumerate(sources):
        if source.path is not None:
            name = "replay" if number == 0 else f"replay{number}"
            args: tuple[str, ...] = ("produce", "replay", str(source.path), "--no-progress")
            specs.append(ChildSpec(name, args, role="producer", producer=True, finishes=True))
        else:
            specs.append(
                ChildSpec(source.kind, ("produce", source.kind), role="producer", producer=True)
            )
    return specs


def _worker_group_cleaner(settings: CommonSettings) -> Callable[[], str | None]:
    """Drop the killed worker's membership, so its replacement gets the partitions now.

    `up` runs the namespace's only worker, so whoever is still in the group is the dead
    one; without this the new worker waits out the dead member's session (a minute).
    """
    from trending_arxiv.devstack.status import consumer_groups
    from trending_arxiv.kafka import remove_all_members

    group = consumer_groups(settings)["worker"][0]

    def clean() -> str | None:
        dropped = remove_all_members(settings.kafka_bootstrap_servers, group)
        return f"dropped the dead worker from {group}" if dropped else None

    return clean


def child_env(settings: CommonSettings, run_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        ELASTICSEARCH_URL=settings.elasticsearch_url,
        TRENDING_NAMESPACE=settings.namespace,
        TRENDING_RUN_STATE_DIR=settings.run_state_dir,
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("TRENDING_WORKER_DATA_DIR", str(run_dir / "faust"))
    return env


def _status_or_none(
    settings: CommonSettings, on_event: Callable[[str], None]
) -> dict[str, Any] | None:
    """The status; a failure to gather it is reported, never the end of `up`."""
    try:
        return gather_status(settings)
    except Exception as error:  # the children matter more than the table
        on_event(f"status unavailable: {type(error).__name__}: {error}")
        return None


def _check_port_free(host: str, port: int) -> None:
    """Fail before starting anything when the web server could not listen."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as error:
            raise UpError(f"cannot serve the page on {host}:{port}: {error.strerror}") from error


def run_up(
    sources: list[Source],
    port: int,
    host: str,
    alert_rules: Path | None,
    console: Console,
    live_table: bool,
) -> int:
    """Run until Ctrl-C/SIGTERM; return the exit status."""
    from trending_arxiv.devstack.stack import StackError, ensure_stack
    from trending_arxiv.kafka import ensure_topics

    try:
        endpoints = ensure_stack(log=lambda line: console.print(f"[dim]{line}[/]"))
    except StackError as error:
        raise UpError(f"could not start Kafka and Elasticsearch: {error}") from error
    settings = CommonSettings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        elasticsearch_url=endpoints.elasticsearch_url,
    )
    settings = settings.model_copy(
        update={"run_state_dir": str(Path(settings.run_state_dir).resolve())}
    )
    run_dir = Path(settings.run_state_dir) / settings.namespace
    _check_port_free(host, port)
    ensure_topics(settings)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    console.print(
        f"namespace [bold]{settings.namespace}[/], sources "
        f"{', '.join(s.name for s in sources)}; logs in {run_dir / 'logs'}\n"
        f"[bold]page:[/] {url}  ·  `trending-arxiv status` from another terminal  ·  Ctrl-C stops"
    )

    def on_event(text: str) -> None:
        console.print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/] {text}", soft_wrap=True)

    supervisor = Supervisor(
        child_specs(sources, port, host, alert_rules, settings),
        child_env(settings, run_dir),
        run_dir / "logs",
        on_event=on_event,
    )
    path = state_path(settings)
    started_at = to_utc_iso(datetime.now(UTC))
    rate = RecordsRate()
    records_per_second: float | None = None

    def save() -> None:
        write_state(path, {
            "pid": os.getpid(), "url": url, "started_at": started_at,
            "updated_at": to_utc_iso(datetime.now(UTC)),
            "processes": supervisor.rows(), "raw_records_per_second": records_per_second,
        })  # fmt: skip

    # Ctrl-C and SIGTERM only ask the loop to end: raised inside a status query, an
    # exception can be swallowed (kafka-python's I/O loop logs and drops whatever a task
    # raises, KeyboardInterrupt included), and `up` then never stopped.
    stop_requested = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop_requested.set()

    previous_term = signal.signal(signal.SIGTERM, on_signal)
    previous_int = signal.signal(signal.SIGINT, on_signal)
    live = None
    try:
        supervisor.start()
        save()
        status = _status_or_none(settings, on_event)
        if live_table and status is not None:
            live = Live(status_table(status), console=console, auto_refresh=False)
        with live or nullcontext():
            next_status = time.monotonic()
            while not stop_requested.is_set():
                supervisor.tick()
                save()
                if time.monotonic() >= next_status:
                    status = _status_or_none(settings, on_event)
                    if status is not None:
                        records_per_second = rate.add(status["kafka"].get("raw_records_in"))
                        status["raw_records_per_second"] = records_per_second
                        if live is not None:
                            live.update(status_table(status), refresh=True)
                    next_status = time.monotonic() + STATUS_EVERY_SECONDS
                stop_requested.wait(TICK_SECONDS)
    finally:
        # Whatever ended the loop, the children go too; no signal interrupts that.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        console.print("stopping: producers first, then the worker, sink, alerts and web server")
        supervisor.stop()
        save()
        console.print("stopped; every child process has exited")
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
    return 0


def up_command(
    sources: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: bluesky, mastodon, x, replay:PATH. Default: bluesky, "
            "plus x and mastodon when TRENDING_X_BEARER_TOKEN(_FILE) / "
            "TRENDING_MASTODON_BASE_URL are set."
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the web page.")] = 8000,
    host: Annotated[str, typer.Option(help="Interface of the web page.")] = "127.0.0.1",
    alerts: Annotated[
        Path | None,
        typer.Option("--alerts", help="Alert delivery rules (YAML/JSON); default: stdout."),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option(help="Namespace (default: TRENDING_NAMESPACE or 'trending').")
    ] = None,
) -> None:
    """Run the whole pipeline live, supervised: stack, worker, sink, producers, alerts, web."""
    console = Console(stderr=True)
    if namespace:
        os.environ["TRENDING_NAMESPACE"] = namespace
    try:
        chosen = parse_sources(sources, dict(os.environ))
        if alerts is not None and not alerts.is_file():
            raise UpError(f"alert rules file {alerts} does not exist")
        code = run_up(
            chosen, port, host, alerts.resolve() if alerts else None, console,
            live_table=console.is_terminal,
        )  # fmt: skip
    except UpError as error:
        console.print(f"[bold red]error:[/] {error}", soft_wrap=True)
        raise typer.Exit(2) from error
    raise typer.Exit(code)


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    namespace: Annotated[
        str | None, typer.Option(help="Namespace (default: TRENDING_NAMESPACE or 'trending').")
    ] = None,
) -> None:
    """The pipeline's processes (pids, restarts), consumer lag, papers counted, last event."""
    settings = CommonSettings(namespace=namespace) if namespace else CommonSettings()
    status = gather_status(settings)
    if as_json:
        sys.stdout.write(json.dumps(status) + "\n")
        return
    Console().print(status_table(status))
    if not status["up"]["running"]:
        Console(stderr=True).print(
            f"[dim]no `trending-arxiv up` running for namespace {settings.namespace!r}[/]"
        )
