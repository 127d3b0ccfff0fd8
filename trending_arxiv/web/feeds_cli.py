"""`trending-arxiv feeds ...`: the Bluesky feeds this server generates, and their records."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError

from trending_arxiv.core.skyfeed import generator_record, put_record_body
from trending_arxiv.web.feed_settings import FeedSettings

feeds_app = typer.Typer(
    help="Bluesky custom feeds (TRENDING_FEEDS, TRENDING_FEEDS_HOSTNAME, "
    "TRENDING_FEEDS_PUBLISHER_DID).",
    no_args_is_help=True,
)


def _settings() -> FeedSettings:
    try:
        return FeedSettings()
    except ValidationError as error:
        typer.echo(f"error: the feed settings are invalid:\n{error}", err=True)
        raise typer.Exit(code=2) from error


@feeds_app.command("list")
def list_feeds() -> None:
    """The configured feeds: name, at:// URI and ranking, one JSON line each."""
    settings = _settings()
    for feed in settings.feeds:
        line = {"uri": settings.feed_uri(feed), **feed.model_dump(exclude_none=True)}
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")


@feeds_app.command("record")
def record_command(
    name: Annotated[str, typer.Argument(help="The feed's name (its record key).")],
    created_at: Annotated[
        datetime | None,
        typer.Option(
            help="The record's createdAt (ISO-8601, naive means UTC; default: now).",
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
        ),
    ] = None,
) -> None:
    """Print the app.bsky.feed.generator record of feed NAME as the JSON input of
    com.atproto.repo.putRecord (publish it with your account; see the README's "Feeds")."""
    settings = _settings()
    feed = settings.feed_named(name)
    if feed is None:
        known = ", ".join(f.name for f in settings.feeds) or "none"
        typer.echo(f"error: no feed named {name!r} is configured (configured: {known})", err=True)
        raise typer.Exit(code=2)
    moment = created_at or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    record = generator_record(settings.service_did, feed.display_name, feed.description, moment)
    body = put_record_body(settings.publisher_did, feed.name, record)
    sys.stdout.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
