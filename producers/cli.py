"""`trending-arxiv produce ...`: one process per producer.

Each command reads its settings from the environment (`TRENDING_*`, see
`producers/settings.py`); options override them. SIGTERM/SIGINT stop the producer
cleanly: pending records are flushed to Kafka and the checkpoint is saved, exit code 0.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from producers.kafka_writer import WriterStopped
from producers.metrics import serve_metrics
from producers.replay import ReplayInputError, replay, summary_dict
from producers.settings import (
    BlueskyProducerSettings,
    MastodonProducerSettings,
    ProducerSettings,
    XProducerSettings,
)
from trending_arxiv.runtime import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    Service,
    configure_logging,
    run_service,
    stop_on_signals,
)

produce_app = typer.Typer(
    help="Bring social posts into Kafka's raw-posts topic (X, Bluesky, Mastodon, or a replay).",
    no_args_is_help=True,
)

S = TypeVar("S", bound=ProducerSettings)
err = Console(stderr=True, soft_wrap=True)

NamespaceOpt = Annotated[
    str | None,
    typer.Option(help="Namespace of topics (default: TRENDING_NAMESPACE or 'trending')."),
]
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(help="Serve Prometheus metrics on this port (default: off)."),
]
MetricsAddrOpt = Annotated[str, typer.Option(help="Address the metrics endpoint binds to.")]


def _settings(cls: type[S], **overrides: Any) -> S:
    """Settings from the environment plus the options given; clear errors, no secrets."""
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"])
            err.print(f"[red]invalid setting {where}:[/red] {error['msg']}")
        raise typer.Exit(EXIT_USAGE) from None


def _run(make: Callable[[], Service[None]]) -> None:
    """Make and run a producer until stopped; a stop while waiting for Kafka is a clean exit."""
    try:
        run_service(make())
    except WriterStopped:
        pass
    except (RuntimeError, ValueError) as exc:
        # Configuration problems the operator must fix (messages never include secrets).
        err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILURE) from None


@produce_app.command("replay")
def replay_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="JSON-lines files (.jsonl/.ndjson/.json, optionally .gz) or directories of them."
        ),
    ],
    rate: Annotated[
        float | None,
        typer.Option(help="Posts per second (default: as fast as Kafka takes them).", min=0.001),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Save the position of what Kafka acknowledged here; rerun with the same "
            "file to resume after a kill."
        ),
    ] = None,
    progress: Annotated[
        bool, typer.Option(help="Show a progress bar (only on a terminal).")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object.")
    ] = False,
    namespace: NamespaceOpt = None,
) -> None:
    """Send each line of FILE|DIR ... unmodified to the raw-posts topic, keyed by post id.

    Non-JSON lines are sent too (the stream dead-letters them) and counted in the
    summary; blank lines are skipped. A file with no JSON line at all makes the command
    exit with status 1.
    """
    settings = _settings(ProducerSettings, namespace=namespace)
    configure_logging(settings.log_level)
    stop = threading.Event()
    try:
        with stop_on_signals(stop.set):
            summary = replay(
                paths, settings, rate=rate, progress=progress, checkpoint=checkpoint, stop=stop
            )
    except ReplayInputError as exc:
        err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    except WriterStopped:
        raise typer.Exit(EXIT_OK) from None
    if as_json:
        print(json.dumps(summary_dict(summary)))
    else:
        for line in summary.lines():
            err.print(line)
    if summary.not_posts:
        for path in summary.not_posts:
            err.print(
                f"[red]error:[/red] {path}: nothing in it is a post (no line is JSON); "
                "is it the right file? (its lines go to the dead-letter topic)",
                soft_wrap=True,
            )
        raise typer.Exit(1)


@produce_app.command("x")
def x_command(
    mode: Annotated[
        str | None,
        typer.Option(
            help="stream (filtered stream + rules), search (recent-search polling) or follows "
            "(posts of whom --handle follows).",
        ),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(help='Query/rule (default: url:"arxiv.org" and mirrors, OR-ed).'),
    ] = None,
    handle: Annotated[str | None, typer.Option(help="Account whose follow list to watch.")] = None,
    follows_transport: Annotated[
        str | None,
        typer.Option(help="follows mode: 'stream' (from: rules) or 'search' (polling)."),
    ] = None,
    poll_interval: Annotated[
        float | None, typer.Option(help="Seconds between recent-search polls.")
    ] = None,
    api_base_url: Annotated[
        str | None, typer.Option(help="X API host (default https://api.x.com).")
    ] = None,
    namespace: NamespaceOpt = None,
    metrics_port: MetricsPortOpt = None,
    metrics_addr: MetricsAddrOpt = "127.0.0.1",
) -> None:
    """X API v2 (filtered stream, recent search or a follow list) into Kafka.

    The bearer token comes from TRENDING_X_BEARER_TOKEN or the file named by
    TRENDING_X_BEARER_TOKEN_FILE, never from the command line.
    """
    from producers.x import XProducer

    settings = _settings(
        XProducerSettings,
        x_mode=mode,
        x_query=query,
        x_follow_handle=handle,
        x_follows_transport=follows_transport,
        x_poll_interval_seconds=poll_interval,
        x_api_base_url=api_base_url,
        namespace=namespace,
    )
    configure_logging(settings.log_level)
    serve_metrics(metrics_port, metrics_addr)
    _run(lambda: XProducer(settings))


@produce_app.command("bluesky")
def bluesky_command(
    url: Annotated[
        list[str] | None,
        typer.Option(help="Jetstream subscribe URL; repeat for fail-over order."),
    ] = None,
    cursor_file: Annotated[
        Path | None, typer.Option(help="Where the time_us cursor is kept.")
    ] = None,
    rewind: Annotated[
        float | None, typer.Option(help="Seconds to rewind the cursor on (re)connect.")
    ] = None,
    compress: Annotated[
        bool | None,
        typer.Option(help="zstd frames (needs TRENDING_BLUESKY_ZSTD_DICTIONARY)."),
    ] = None,
    zstd_dictionary: Annotated[
        Path | None, typer.Option(help="Jetstream's zstd dictionary file.")
    ] = None,
    namespace: NamespaceOpt = None,
    metrics_port: MetricsPortOpt = None,
    metrics_addr: MetricsAddrOpt = "127.0.0.1",
) -> None:
    """Bluesky Jetstream (posts and reposts, with deletes) into Kafka, resuming by cursor."""
    from producers.bluesky import BlueskyProducer

    settings = _settings(
        BlueskyProducerSettings,
        bluesky_jetstream_urls=url or None,
        bluesky_cursor_file=cursor_file,
        bluesky_rewind_seconds=rewind,
        bluesky_compress=compress,
        bluesky_zstd_dictionary=zstd_dictionary,
        namespace=namespace,
    )
    configure_logging(settings.log_level)
    serve_metrics(metrics_port, metrics_addr)
    _run(lambda: BlueskyProducer(settings))


@produce_app.command("mastodon")
def mastodon_command(
    instance: Annotated[
        str | None, typer.Option(help="Instance base URL (default https://mastodon.social).")
    ] = None,
    stream: Annotated[str | None, typer.Option(help="Timeline: public or hashtag.")] = None,
    hashtag: Annotated[str | None, typer.Option(help="Hashtag for --stream hashtag.")] = None,
    mode: Annotated[
        str | None, typer.Option(help="stream (SSE, with catch-up) or poll (timeline polling).")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Where the last acknowledged status id is kept.")
    ] = None,
    namespace: NamespaceOpt = None,
    metrics_port: MetricsPortOpt = None,
    metrics_addr: MetricsAddrOpt = "127.0.0.1",
) -> None:
    """Mastodon statuses that link arXiv (streamed, or polled) into Kafka.

    The access token comes from TRENDING_MASTODON_ACCESS_TOKEN or the file named by
    TRENDING_MASTODON_ACCESS_TOKEN_FILE.
    """
    from producers.mastodon import MastodonProducer

    settings = _settings(
        MastodonProducerSettings,
        mastodon_base_url=instance,
        mastodon_stream=stream,
        mastodon_hashtag=hashtag,
        mastodon_mode=mode,
        mastodon_checkpoint_file=checkpoint,
        namespace=namespace,
    )
    configure_logging(settings.log_level)
    serve_metrics(metrics_port, metrics_addr)
    _run(lambda: MastodonProducer(settings))


if __name__ == "__main__":
    produce_app()
