"""The `trending-arxiv` command line: one console script, one subcommand per process."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from trending_arxiv.runtime import collect_garbage_rarely, configure_logging, run_service

app = typer.Typer(
    name="trending-arxiv",
    help="Trending arXiv: social posts linking arXiv papers, counted, ranked and searched.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def _register_subapps() -> None:
    from producers.cli import produce_app
    from sinks.alerts import alerts_command
    from sinks.kibana_import import kibana_import_command
    from trending_arxiv.cli.follows import follows_app
    from trending_arxiv.cli.queries import (
        catalog_app,
        enrich_command,
        paper_command,
        search_command,
        top_command,
    )
    from trending_arxiv.cli.subscriptions import subscriptions_app
    from trending_arxiv.devstack.commands import stack_app
    from trending_arxiv.web.feeds_cli import feeds_app
    from trending_arxiv.web.server import serve_command

    app.add_typer(stack_app, name="stack", help="Start, stop and inspect local Kafka + ES.")
    app.add_typer(produce_app, name="produce", help="Push raw posts into Kafka.")
    app.command("top")(top_command)
    app.command("search")(search_command)
    app.command("paper")(paper_command)
    app.add_typer(follows_app, name="follows")
    app.command("enrich")(enrich_command)
    app.add_typer(catalog_app, name="catalog")
    app.command("serve", help="Serve the web page and the HTTP API.")(serve_command)
    app.command("alerts", help="Deliver alerts to webhooks, Slack and stdout.")(alerts_command)
    app.add_typer(subscriptions_app, name="subscriptions")
    kibana_app = typer.Typer(help="Kibana saved objects (data views, dashboard).")
    kibana_app.command("import")(kibana_import_command)
    app.add_typer(kibana_app, name="kibana")
    app.add_typer(feeds_app, name="feeds")
    from trending_arxiv.devstack.up import status_command, up_command

    app.command("up")(up_command)
    app.command("status")(status_command)


def _fail(message: str) -> typer.Exit:
    # soft_wrap: no line breaks of Rich's own inside paths (stderr is often no terminal).
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code=2)


@app.command()
def extract(
    files: Annotated[
        list[Path] | None, typer.Argument(help="JSON-lines files; standard input if none.")
    ] = None,
) -> None:
    """Print the normalised posts (with canonical arXiv IDs) of raw payloads, one JSON line each."""
    from trending_arxiv.cli.extract import run_extract

    raise typer.Exit(code=run_extract(list(files or []), sys.stdout, sys.stderr))


@app.command()
def worker() -> None:
    """Run the Faust stream worker (parse, dedupe, join, count, alert) until stopped."""
    from streams.app import run_worker
    from trending_arxiv.settings import WorkerSettings

    settings = WorkerSettings()
    configure_logging(settings.log_level)
    run_worker(settings)


@app.command()
def sink(
    idle_exit: Annotated[
        float | None,
        typer.Option(help="Exit after this many seconds without new records (default: never)."),
    ] = None,
) -> None:
    """Run the Elasticsearch sink (mentions and counts into indices) until stopped."""
    from elasticsearch import Elasticsearch

    from sinks.elasticsearch_sink import ElasticsearchSink
    from sinks.enrich import Enricher
    from sinks.enrich_rules import EnrichSettings

    settings = EnrichSettings()
    configure_logging(settings.log_level)
    collect_garbage_rarely(settings.sink_gc_threshold)  # see SinkSettings
    es = Elasticsearch(**settings.elasticsearch_client_kwargs())
    # Metadata comes from memory, the catalog and the index at once; arXiv is asked in
    # the background, so counting never waits for it.
    enricher = Enricher(settings, es).start()
    runner = ElasticsearchSink(settings, es=es, metadata_lookup=enricher)
    try:
        stats = run_service(runner, lambda: runner.run(idle_exit_seconds=idle_exit))
    finally:
        enricher.stop()
    console.print(f"sink stopped: {stats}")


def print_papers(rows: list[dict], as_json: bool, window: str) -> None:
    """Print ranked papers as JSON lines or as a table."""
    if as_json:
        for row in rows:
            out = {
                "arxiv_id": row["arxiv_id"],
                "title": row.get("title"),
                "posts": row["posts"],
                "accounts": row["accounts"],
                "window": window,
                "trend_score": row.get("trend_score"),
                "published": row.get("published"),
                "categories": row.get("categories"),
                "authors": row.get("authors"),
            }
            sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    table = Table(title=f"Trending arXiv papers ({window})")
    table.add_column("#", justify="right")
    table.add_column("arXiv")
    table.add_column("posts", justify="right")
    table.add_column("accounts", justify="right")
    table.add_column("title")
    for rank, row in enumerate(rows, start=1):
        table.add_row(
            str(rank),
            row["arxiv_id"],
            str(row["posts"]),
            str(row["accounts"]),
            row.get("title") or "(metadata pending)",
        )
    Console().print(table)


@app.command()
def demo(
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input", help="JSON-lines posts to replay (default: the bundled seed sample)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per paper.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Print only the top N.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline.")] = 300.0,
    serve: Annotated[
        bool | None,
        typer.Option(
            "--serve/--no-serve",
            help="Serve the web page afterwards (default: on a terminal without --json).",
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port of the web page.")] = 8000,
    serve_seconds: Annotated[
        float | None, typer.Option(help="Stop serving after this many seconds.")
    ] = None,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the demo's namespace (topics, indices) when it ends."),
    ] = False,
) -> None:
    """The main job: replay posts through Kafka, Faust and Elasticsearch; print the top
    papers and the alerts their history triggered. The demo's namespace is removed when
    it ends (after serving the page), unless --keep."""
    from trending_arxiv.demo import DemoError, print_alerts, remove_namespace, run_demo, serve_page

    configure_logging("WARNING")
    try:
        result = run_demo(input_file, timeout=timeout, console=console, keep=keep)
    except DemoError as error:
        raise _fail(str(error)) from error
    rows = result.rows
    print_papers(rows[:limit] if limit else rows, as_json, "all")
    print_alerts(result.alerts, as_json, console)
    if serve is None:
        serve = sys.stdin.isatty() and sys.stdout.isatty() and not as_json
    try:
        if serve:
            serve_page(result.settings, port, serve_seconds, console)
    finally:
        namespace = result.settings.namespace
        if keep:
            console.print(f"kept namespace {namespace} (trending-arxiv clean {namespace})")
        else:
            remove_namespace(result.settings, force=True)
            console.print(f"removed namespace {namespace} (--keep keeps it)")


class HealthRole(StrEnum):
    worker = "worker"
    sink = "sink"
    alerts = "alerts"
    api = "api"


def consumer_group_of(role: HealthRole, namespace: str) -> str:
    """The Kafka consumer group a long-running role joins (as each process names it)."""
    from sinks.alerts import AlertSettings
    from trending_arxiv.settings import SinkSettings, WorkerSettings

    if role is HealthRole.worker:
        return f"{namespace}-{WorkerSettings(namespace=namespace).worker_id}"
    if role is HealthRole.sink:
        return f"{namespace}-{SinkSettings(namespace=namespace).sink_group_id}"
    return f"{namespace}-{AlertSettings(namespace=namespace).alerts_group_id}"


@app.command()
def healthcheck(
    role: Annotated[HealthRole, typer.Argument(help="Which process to check.")],
    url: Annotated[str, typer.Option(help="The API's base URL (role api).")] = (
        "http://127.0.0.1:8000"
    ),
) -> None:
    """Exit 0 when a process is healthy (for docker-compose): worker, sink and alerts
    while their consumer group has a live member in Kafka, the API while /healthz is 200."""
    from trending_arxiv.settings import CommonSettings

    if role is HealthRole.api:
        import httpx

        try:
            answer = httpx.get(url.rstrip("/") + "/healthz", timeout=5.0)
        except httpx.HTTPError as error:
            raise _fail(f"the API at {url} does not answer: {type(error).__name__}") from error
        if answer.status_code != 200:
            raise _fail(f"{url}/healthz answered {answer.status_code}: {answer.text[:200]}")
        typer.echo(f"api healthy: {answer.text[:200]}")
        return
    from kafka.errors import KafkaError

    from trending_arxiv.kafka import group_state

    settings = CommonSettings()
    group = consumer_group_of(role, settings.namespace)
    try:
        state, members = group_state(settings.kafka_bootstrap_servers, group)
    except (KafkaError, OSError) as error:
        raise _fail(f"Kafka at {settings.kafka_bootstrap_servers} does not answer: "
                    f"{type(error).__name__}") from error  # fmt: skip
    if members == 0 or state != "Stable":
        raise _fail(f"the {role.value}'s consumer group {group} is {state} "
                    f"with {members} live members")  # fmt: skip
    typer.echo(f"{role.value} healthy: group {group} {state}, {members} live members")


@app.command()
def clean(
    namespace: Annotated[str, typer.Argument(help="The namespace to remove, e.g. demo-1a2b3c4d.")],
    force: Annotated[
        bool, typer.Option("--force", help="Remove it even while its processes run.")
    ] = False,
) -> None:
    """Delete a namespace: its Kafka topics (the worker's too), consumer groups,
    Elasticsearch indices and index templates. Other namespaces are not touched."""
    from trending_arxiv.demo import DemoError, remove_namespace
    from trending_arxiv.settings import CommonSettings

    try:
        settings = CommonSettings(namespace=namespace)
    except ValueError as error:
        raise _fail(f"not a namespace: {namespace!r}") from error
    configure_logging("WARNING")
    try:
        removed = remove_namespace(settings, force=force)
    except DemoError as error:
        raise _fail(str(error)) from error
    for kind, names in removed.items():
        typer.echo(f"removed {len(names)} {kind}" + (": " + ", ".join(names) if names else ""))


def main() -> None:
    _register_subapps()
    app()


if __name__ == "__main__":
    main()
