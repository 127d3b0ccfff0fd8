"""`trending-arxiv subscriptions add|list|remove|run`.

(The shell: it only
parses options and calls `sinks.subscriptions` and `sinks.subscriptions_delivery`.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

subscriptions_app = typer.Typer(
    help="Stored queries with a trigger or a digest, delivered once (webhook, Slack, e-mail).",
    no_args_is_help=True,
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _es(settings: Any) -> Any:
    from elasticsearch import Elasticsearch

    return Elasticsearch(**settings.elasticsearch_client_kwargs())


@subscriptions_app.command("add")
def add_command(
    name: Annotated[str | None, typer.Argument(help="Name (omit with --file).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="YAML/JSON file of subscriptions.")
    ] = None,
    category: Annotated[list[str] | None, typer.Option(help="cs.CL, cs.*, math...")] = None,
    keyword: Annotated[list[str] | None, typer.Option(help="In title or abstract.")] = None,
    author: Annotated[list[str] | None, typer.Option(help="Part of an author's name.")] = None,
    arxiv_id: Annotated[list[str] | None, typer.Option("--id", help="arXiv ID.")] = None,
    follows: Annotated[str | None, typer.Option(help="Only posts by USER's follow list.")] = None,
    source: Annotated[str | None, typer.Option(help="Only posts from x, bluesky...")] = None,
    trigger: Annotated[str | None, typer.Option(help="accounts, velocity or top.")] = None,
    min_accounts: Annotated[int, typer.Option(min=1)] = 10,
    window: Annotated[str, typer.Option(help="Trigger window: 1h, 24h, 7d, 30d.")] = "1h",
    velocity_ratio: Annotated[float, typer.Option(min=0.0)] = 5.0,
    top: Annotated[int, typer.Option(min=1, help="K of a top trigger, N of a digest.")] = 10,
    digest: Annotated[str | None, typer.Option(help="hourly or daily.")] = None,
    webhook: Annotated[str | None, typer.Option(help="Webhook URL.")] = None,
    slack: Annotated[str | None, typer.Option(help="Slack incoming webhook URL.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address (never logged).")] = None,
    stdout: Annotated[bool, typer.Option(help="Print deliveries as JSON lines.")] = False,
) -> None:
    """Store (or replace) subscriptions from options or a file."""
    from sinks.subscriptions import (
        load_subscriptions_file,
        parse_subscription,
        store_subscription,
    )
    from trending_arxiv.settings import CommonSettings

    settings = CommonSettings()
    try:
        if file is not None:
            if name is not None:
                raise ValueError("give either NAME with options or --file, not both")
            subscriptions = load_subscriptions_file(file)
        else:
            if name is None:
                raise ValueError("give a NAME (or --file)")
            targets = [t for t, v in (("webhook", webhook), ("slack", slack), ("email", email),
                                      ("stdout", stdout)) if v]  # fmt: skip
            if len(targets) != 1:
                raise ValueError("choose one delivery: --webhook, --slack, --email or --stdout")
            delivery: dict[str, Any] = {"type": targets[0], "digest": digest, "top": top}
            if webhook or slack:
                delivery["url"] = webhook or slack
            if email:
                delivery["to"] = email
            data: dict[str, Any] = {
                "name": name,
                "query": {"categories": category or [], "keywords": keyword or [],
                          "authors": author or [], "arxiv_ids": arxiv_id or [],
                          "follows": follows, "source": source},
                "delivery": delivery,
            }  # fmt: skip
            if trigger is not None:
                data["trigger"] = {"kind": trigger, "min_accounts": min_accounts,
                                   "window": window, "velocity_ratio": velocity_ratio,
                                   "top": top}  # fmt: skip
            subscriptions = [parse_subscription(data)]
        es = _es(settings)
        for subscription in subscriptions:
            store_subscription(es, settings, subscription)
            typer.echo(f"stored subscription {subscription.name}", err=True)
    except ValueError as error:
        raise _fail(str(error)) from None


@subscriptions_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The stored subscriptions (addresses and URLs redacted)."""
    from sinks.subscriptions import list_subscriptions
    from trending_arxiv.settings import CommonSettings

    settings = CommonSettings()
    for subscription in list_subscriptions(_es(settings), settings):
        shown = subscription.redacted()
        if as_json:
            sys.stdout.write(json.dumps(shown) + "\n")
        else:
            delivery = shown["delivery"]
            trigger = shown["trigger"]["kind"] if shown["trigger"] else ""
            what = f"digest {delivery['digest']}" if delivery["digest"] else trigger
            query = {k: v for k, v in shown["query"].items() if v}
            sys.stdout.write(f"{shown['name']}: {query} -> {what} via {delivery['type']}\n")


@subscriptions_app.command("remove")
def remove_command(name: Annotated[str, typer.Argument(help="The subscription's name.")]) -> None:
    """Delete a stored subscription."""
    from sinks.subscriptions import remove_subscription
    from trending_arxiv.settings import CommonSettings

    settings = CommonSettings()
    try:
        removed = remove_subscription(_es(settings), settings, name)
    except ValueError as error:
        raise _fail(str(error)) from None
    if not removed:
        raise _fail(f"no subscription named {name!r}")
    typer.echo(f"removed subscription {name}", err=True)


@subscriptions_app.command("run")
def run_command(
    idle_exit: Annotated[
        float | None, typer.Option(help="Exit after this many idle seconds (default: never).")
    ] = None,
) -> None:
    """Evaluate the subscriptions on the stream's counts and deliver alerts and digests."""
    from sinks.subscriptions_delivery import SubscriptionService, SubscriptionSettings
    from trending_arxiv.runtime import configure_logging, run_service

    settings = SubscriptionSettings()
    configure_logging(settings.log_level)
    service = SubscriptionService(settings)
    try:
        stats = run_service(service, lambda: service.run(idle_exit_seconds=idle_exit))
    finally:
        service.close()
    typer.echo(f"subscriptions stopped: {stats}", err=True)
