"""`trending-arxiv stack up|down|status`: the typer commands over `devstack.stack`."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict

import typer
from pydantic import ValidationError

from trending_arxiv.devstack.config import StackError, StackSettings
from trending_arxiv.devstack.stack import ensure_stack, stack_down, stack_status

stack_app = typer.Typer(
    help="Local Kafka and Elasticsearch on loopback (fetched from Maven Central, no Docker).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold settings with credentials
)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Print what the user must fix as one `error:` message, not a traceback."""
    try:
        yield
    except ValidationError as exc:
        typer.echo(f"error: invalid TRENDING_STACK_* setting:\n{exc}", err=True)
        raise typer.Exit(2) from exc
    except StackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@stack_app.command()
def up() -> None:
    """Fetch (first time only), start and wait for Kafka and Elasticsearch."""
    began = time.monotonic()
    with _user_errors():
        endpoints = ensure_stack(StackSettings())
    typer.echo(f"KAFKA_BOOTSTRAP_SERVERS={endpoints.kafka_bootstrap_servers}")
    typer.echo(f"ELASTICSEARCH_URL={endpoints.elasticsearch_url}")
    typer.echo(f"stack ready in {time.monotonic() - began:.1f} s", err=True)


@stack_app.command()
def down(
    wipe: bool = typer.Option(False, "--wipe", help="Also delete Kafka and ES data."),
) -> None:
    """Stop the servers that `up` started (SIGTERM, then SIGKILL)."""
    with _user_errors():
        stack_down(StackSettings(), wipe=wipe)


@stack_app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per server."),
) -> None:
    """Show each server's state, address, PID and version."""
    with _user_errors():
        statuses = stack_status(StackSettings())
    for item in statuses:
        if as_json:
            typer.echo(json.dumps(asdict(item)))
            continue
        parts = [f"{item.name:<14}", f"{item.state:<11}", item.address]
        if item.pid is not None:
            parts.append(f"pid {item.pid}")
        if item.version:
            parts.append(f"version {item.version}")
        if item.rss_mb is not None:
            parts.append(f"rss {item.rss_mb:.0f} MiB")
        if item.detail:
            parts.append(f"({item.detail})")
        if item.log and item.state != "running":
            parts.append(f"log {item.log}")
        typer.echo("  ".join(parts))


if __name__ == "__main__":
    stack_app()
