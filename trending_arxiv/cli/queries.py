"""Command-line parts of the sinks: catalog loading, enrichment, search, paper detail, follows.

The lead registers these on the root Typer app (`trending_arxiv/cli.py`):
``catalog_app`` as ``catalog``; ``top_command``, ``search_command``, ``paper_command``,
and ``enrich_command`` as top-level commands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from trending_arxiv.core.models import parse_utc
from trending_arxiv.core.vocabulary import MAX_PAGE_SIZE, WINDOWS

T = TypeVar("T")
P = TypeVar("P", bound=BaseModel)

console = Console(stderr=True)
catalog_app = typer.Typer(help="Offline arXiv metadata (the Kaggle snapshot, OAI-PMH XML).",
                          no_args_is_help=True)  # fmt: skip


@catalog_app.callback()
def _catalog_group() -> None:
    """Offline arXiv metadata (the Kaggle snapshot, OAI-PMH XML)."""


def _fail(message: str) -> typer.Exit:
    # soft_wrap: no line breaks of Rich's own inside paths (stderr is often no terminal).
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code=2)


def _es(settings: Any) -> Any:
    from elasticsearch import Elasticsearch

    return Elasticsearch(**settings.elasticsearch_client_kwargs())


def _query(settings: Any, run: Callable[[], T]) -> T:
    """Run a query; bad input, a namespace without data and an unreachable Elasticsearch
    become one clear error each."""
    from elasticsearch import NotFoundError

    try:
        return run()
    except typer.Exit:
        raise  # already reported
    except ValueError as error:
        raise _fail(str(error)) from error
    except NotFoundError as error:
        # Only a missing index gives a search a 404: nothing was indexed here yet.
        raise _fail(
            f"no data yet in namespace {settings.namespace!r}: Elasticsearch at "
            f"{settings.elasticsearch_url_redacted} has no index {_missing_index(error)!r}. "
            "Run `trending-arxiv worker` and `trending-arxiv sink` and produce posts "
            "(e.g. `trending-arxiv produce replay FILE`), or set TRENDING_NAMESPACE to the "
            "namespace that has them."
        ) from error
    except Exception as error:
        raise _fail(
            f"could not query Elasticsearch at {settings.elasticsearch_url_redacted}: {error}"
        ) from error


def _missing_index(error: Any) -> str:
    info = getattr(error, "info", None) or getattr(error, "body", None) or {}
    index = info.get("error", {}).get("index") if isinstance(info, dict) else None
    return str(index or "?")


def _as_of(value: str | None) -> datetime | None:
    from trending_arxiv.search.queries import check_as_of

    if value is None:
        return None
    try:
        moment = parse_utc(value)
    except ValueError as error:
        raise _fail(
            f"--as-of must be an ISO-8601 time like 2016-02-20T12:00:00Z, got {value!r}"
        ) from error
    try:
        return check_as_of(moment)
    except ValueError as error:
        raise _fail(f"--as-of: {error}") from error


def _params(model: type[P], **options: Any) -> P:
    """The options as the query model the API takes too (same words, same limits)."""
    from trending_arxiv.search.params import describe

    try:
        return model(**options)
    except ValidationError as error:
        raise _fail(describe(error)) from error


def _emit_json(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


@catalog_app.command("load")
def catalog_load_command(
    file: Annotated[Path, typer.Argument(help="Kaggle JSON lines, OAI-PMH XML or JSON; .gz too.")],
    chunk_size: Annotated[int, typer.Option(min=1, max=50_000, help="Documents per bulk.")] = 5000,
    threads: Annotated[int, typer.Option(min=1, max=16, help="Parallel bulk requests.")] = 2,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Bulk-load arXiv metadata into the papers index (counts of known papers are kept)."""
    from sinks.catalog_loader import load_catalog
    from trending_arxiv.settings import CommonSettings

    settings = CommonSettings()
    try:
        summary = load_catalog(
            _es(settings), settings, file, console=console if progress else None,
            chunk_size=chunk_size, threads=threads,
        )  # fmt: skip
    except (ValueError, OSError) as error:
        raise _fail(f"{file}: {error}") from error
    except Exception as error:
        raise _fail(
            f"could not load into Elasticsearch at {settings.elasticsearch_url_redacted}: {error}"
        ) from error
    table = Table(title=f"catalog load: {file.name}", show_header=False)
    for name, value in (
        ("records read", f"{summary.records:,}"),
        ("created", f"{summary.created:,}"),
        ("updated", f"{summary.updated:,}"),
        ("unchanged", f"{summary.unchanged:,}"),
        ("rejected by Elasticsearch", f"{summary.rejected:,}"),
        ("unusable records", f"{summary.problems:,}"),
        ("seconds", f"{summary.seconds:.1f}"),
        ("docs/s", f"{summary.docs_per_second:,.0f}"),
    ):
        table.add_row(name, value)
    console.print(table)
    for example in summary.examples:
        console.print(f"  [yellow]skipped[/] {example}")
    if summary.written == 0 and summary.records + summary.problems > 0:
        raise typer.Exit(code=1)


def print_rows(rows: list[dict[str, Any]], title: str, with_relevance: bool = False) -> None:
    """A table of ranked papers (stdout)."""
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("arXiv")
    table.add_column("posts", justify="right")
    table.add_column("accounts", justify="right")
    if with_relevance:
        table.add_column("relevance", justify="right")
    table.add_column("published")
    table.add_column("title")
    for rank, row in enumerate(rows, start=1):
        cells = [str(rank), str(row["arxiv_id"]), str(row.get("posts", 0)),
                 str(row.get("accounts", 0))]  # fmt: skip
        if with_relevance:
            cells.append(f"{row.get('relevance') or 0:.2f}")
        cells += [str(row.get("published") or "")[:10], row.get("title") or "(metadata pending)"]
        table.add_row(*cells)
    Console().print(table)


def top_command(
    window: Annotated[str, typer.Option(help=f"One of {', '.join(WINDOWS)}.")] = "24h",
    limit: Annotated[int, typer.Option(min=1, max=MAX_PAGE_SIZE, help="How many papers.")] = 20,
    sort: Annotated[
        str, typer.Option(help="posts, accounts, score, date or field (unusual for its field).")
    ] = "posts",
    half_life: Annotated[
        float | None, typer.Option(help="Trend score half-life in hours (sort score).")
    ] = None,
    category: Annotated[str | None, typer.Option(help="Only this arXiv category.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Only posts from x, bluesky, mastodon...")
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Only posts by accounts this user follows.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Window ends here (ISO-8601).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Top papers for a window, from Elasticsearch, as of the stream's time (or --as-of)."""
    from trending_arxiv.core.models import to_utc_iso
    from trending_arxiv.search.params import TrendingParams
    from trending_arxiv.search.queries import TrendingPage, trending_page
    from trending_arxiv.settings import CommonSettings

    settings = CommonSettings()
    # Checked before any query: a bad option is one clear error.
    params = _params(TrendingParams, window=window, sort=sort, limit=limit, category=category,
                     source=source, user=user, as_of=as_of,
                     half_life_hours=half_life)  # fmt: skip

    def run() -> TrendingPage:
        return trending_page(_es(settings), settings, params.query())

    page = _query(settings, run)
    when = to_utc_iso(page.as_of) if page.as_of else None
    if as_json:
        _emit_json([{**row, "as_of": when} for row in page.papers])
    else:
        who = f" followed by {user}" if user else ""
        at = f", as of {when}" if when else ""
        print_rows(page.papers, f"Trending arXiv papers ({window}, by {sort}{at}){who}")
        if not page.papers:
            console.print(f"no papers with posts in the {window} window{who}{at}")


def search_command(
    query: Annotated[str, typer.Argument(help='Words, "phrases", -excluded, prefix*, a | b.')],
    window: Annotated[str, typer.Option(help=f"One of {', '.join(WINDOWS)}.")] = "all",
    sort: Annotated[
        str, typer.Option(help="relevance, posts, accounts, score or date.")
    ] = "relevance",
    limit: Annotated[int, typer.Option(min=1, max=MAX_PAGE_SIZE)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    category: Annotated[str | None, typer.Option(help="Only this arXiv category.")] = None,
    source: Annotated[str | None, typer.Option(help="Only papers posted on this network.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Full-text search over titles, abstracts and authors."""
    from trending_arxiv.search.papers import search_papers
    from trending_arxiv.search.params import SearchParams
    from trending_arxiv.settings import CommonSettings

    settings = CommonSettings()

    params = _params(SearchParams, q=query, window=window, sort=sort, limit=limit,
                     offset=offset, category=category, source=source)  # fmt: skip

    def run() -> list[dict[str, Any]]:
        return search_papers(_es(settings), settings, params.query())

    rows = _query(settings, run)
    if as_json:
        _emit_json(rows)
    else:
        print_rows(rows, f"Search: {query}", with_relevance=True)


def paper_command(
    arxiv_id: Annotated[str, typer.Argument(help="arXiv ID or URL, e.g. 1602.02410.")],
    posts: Annotated[int, typer.Option(min=0, max=1000, help="How many posts to show.")] = 20,
    as_of: Annotated[str | None, typer.Option("--as-of", help="View as of (ISO-8601).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """One paper: metadata, counts, its posts (newest first) and mentions per hour."""
    from trending_arxiv.core.ids import paper_id
    from trending_arxiv.search.papers import paper_detail
    from trending_arxiv.settings import CommonSettings

    settings = CommonSettings()
    wanted = paper_id(arxiv_id)
    moment = _as_of(as_of)
    detail = _query(
        settings, lambda: paper_detail(_es(settings), settings, wanted or arxiv_id, posts, moment)
    )
    if detail is None:
        raise _fail(f"no paper {arxiv_id} in the index (no metadata and no posts)")
    if as_json:
        _emit_json([detail])
        return
    _print_detail(detail)


def _author(post: dict[str, Any]) -> str:
    """The handle people know, with the id follow lists take (`x:123`)."""
    handle, account = post.get("author_handle"), post.get("account")
    if handle and account:
        return f"@{handle} ({account})"
    return f"@{handle}" if handle else str(account or "")


def _print_detail(detail: dict[str, Any]) -> None:
    out = Console()
    out.print(f"[bold]{detail.get('title') or '(metadata pending)'}[/]  arXiv:{detail['arxiv_id']}")
    if detail.get("authors"):
        out.print(
            ", ".join(detail["authors"][:12]) + (" ..." if len(detail["authors"]) > 12 else "")
        )
    out.print(
        f"{', '.join(detail.get('categories') or [])}  published {detail.get('published') or '?'}"
    )
    counts = Table(title="counts")
    counts.add_column("window")
    counts.add_column("posts", justify="right")
    counts.add_column("accounts", justify="right")
    for window in WINDOWS:
        counts.add_row(window, str(detail["posts_by_window"].get(window, 0)),
                       str(detail["accounts_by_window"].get(window, 0)))  # fmt: skip
    out.print(counts)
    peak = max((b["count"] for b in detail["histogram"]), default=0)
    if peak:
        out.print(f"mentions per hour (up to {detail['as_of']}):")
        for bucket in detail["histogram"]:
            if bucket["count"]:
                bar = "#" * max(1, round(40 * bucket["count"] / peak))
                out.print(f"  {bucket['hour'][:13]}h {bucket['count']:>5} {bar}")
    posts = Table(title=f"posts ({detail['mentions_total']} in all, newest first)")
    for column in ("time", "source", "kind", "author", "text"):
        posts.add_column(column)
    for post in detail["posts"]:
        posts.add_row(str(post.get("@timestamp", ""))[:19], post.get("source") or "",
                      post.get("kind") or "", _author(post),
                      (post.get("text") or "")[:120])  # fmt: skip
    out.print(posts)


def accounts_from_follow_file(path: Path) -> list[str]:
    """Accounts (`source:author_id`) from a follow-list file.

    Accepted: the X producer's `<handle>.json` (`{"following": [{"id": ...}]}`), a JSON
    list of accounts, a JSON object with `accounts`, or text with one account a line
    (blank lines and `#` comments ignored).
    """
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        data = json.loads(text)
        if isinstance(data, list):
            return [str(a) for a in data]
        if isinstance(data, dict) and isinstance(data.get("following"), list):
            return [
                f"x:{u['id']}" for u in data["following"] if isinstance(u, dict) and u.get("id")
            ]
        if isinstance(data, dict) and isinstance(data.get("accounts"), list):
            return [str(a) for a in data["accounts"]]
        raise ValueError("JSON follow lists need 'following' (X producer) or 'accounts'")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def enrich_command(
    idle_exit: Annotated[
        float | None, typer.Option(help="Exit after this many idle seconds (default: never).")
    ] = None,
) -> None:
    """Fill in arXiv metadata for papers that have none (and refresh recent ones)."""
    from sinks.enrich import Enricher
    from sinks.enrich_rules import EnrichSettings
    from sinks.indices import ensure_indices
    from trending_arxiv.runtime import configure_logging, run_service

    try:
        settings = EnrichSettings()
    except ValueError as error:
        raise _fail(str(error)) from error
    configure_logging(settings.log_level)
    es = _es(settings)
    try:
        ensure_indices(es, settings)
    except Exception as error:
        raise _fail(f"Elasticsearch at {settings.elasticsearch_url_redacted}: {error}") from error
    enricher = Enricher(settings, es)
    stats = run_service(enricher, lambda: enricher.run(idle_exit_seconds=idle_exit))
    console.print(f"enrich stopped: {stats}")
