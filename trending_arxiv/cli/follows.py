"""`trending-arxiv follows`: follow lists in the names people know.

    trending-arxiv follows alice follows.txt          # @name, name.bsky.social, @u@instance, ids
    trending-arxiv follows import bluesky alice.bsky.social [--user alice]

Handles become ids from the posts already seen (the mentions index), else from the
network's API (`producers.directory`). An empty list, or a handle that resolves nowhere,
is an error and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from trending_arxiv.core.accounts import AccountRef, parse_account_ref

console = Console(stderr=True)


class _SetByDefault(TyperGroup):
    """`follows USER FILE` means `follows set USER FILE` (the form kept from before)."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["set", *args]
        return super().resolve_command(ctx, args)


follows_app = typer.Typer(
    cls=_SetByDefault,
    help="Follow lists for per-user trending (top --user, the page's user box).",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code=code)


@dataclass
class Resolution:
    """Follow-list entries turned into accounts, and what could not be."""

    accounts: list[str] = field(default_factory=list)
    handles: dict[str, str] = field(default_factory=dict)  # account -> handle
    from_posts: int = 0
    from_network: int = 0
    unresolved: list[str] = field(default_factory=list)


def resolve(
    refs: list[AccountRef],
    seen: Callable[[list[AccountRef]], dict[tuple[str, str], str]],
    directory: Callable[[str], Any],
) -> Resolution:
    """Ids as given; handles from the posts seen (`seen`), else the network's directory."""
    out = Resolution()
    missing: list[AccountRef] = []
    known = seen(refs) if any(ref.is_handle for ref in refs) else {}
    for ref in refs:
        if not ref.is_handle:
            out.accounts.append(ref.account)
        elif (author := known.get((ref.source, ref.value))) is not None:
            account = f"{ref.source}:{author}"
            out.accounts.append(account)
            out.handles[account] = ref.value
            out.from_posts += 1
        else:
            missing.append(ref)
    asked: dict[str, Any] = {}
    for ref in missing:
        try:
            network = asked.get(ref.source) or asked.setdefault(ref.source, directory(ref.source))
            person = network.lookup(ref.value)
        except Exception as error:  # unreachable, no token, unknown network: say why
            out.unresolved.append(f"{ref.given.strip()} ({error})")
            continue
        if person is None:
            out.unresolved.append(f"{ref.given.strip()} (no such account on {ref.source})")
            continue
        out.accounts.append(person.account)
        out.handles[person.account] = ref.value
        out.from_network += 1
    return out


def _store(user: str, resolution: Resolution, what: str) -> None:
    from elasticsearch import Elasticsearch

    from sinks.indices import ensure_indices
    from trending_arxiv.search.follows import store_follow_list
    from trending_arxiv.settings import CommonSettings

    settings = CommonSettings()
    if resolution.unresolved:
        raise _fail(
            f"{what}: {len(resolution.unresolved)} handle(s) resolve to no account, nothing "
            "stored: " + "; ".join(resolution.unresolved)
        )
    if not resolution.accounts:
        raise _fail(f"{what}: the follow list is empty, nothing stored")
    try:
        es = Elasticsearch(**settings.elasticsearch_client_kwargs())
        ensure_indices(es, settings)
        doc = store_follow_list(es, settings, user, resolution.accounts, handles=resolution.handles)
    except ValueError as error:
        raise _fail(f"{what}: {error}", code=2) from error
    except Exception as error:
        raise _fail(
            f"could not store in Elasticsearch at {settings.elasticsearch_url_redacted}: {error}"
        ) from error
    via = []
    if resolution.from_posts:
        via.append(f"{resolution.from_posts} handles from posts seen")
    if resolution.from_network:
        via.append(f"{resolution.from_network} from the networks")
    note = f" ({', '.join(via)})" if via else ""
    console.print(f"stored {len(doc['accounts'])} accounts followed by {user!r}{note}")


def _seen_lookup() -> Callable[[list[AccountRef]], dict[tuple[str, str], str]]:
    from elasticsearch import Elasticsearch

    from trending_arxiv.search.accounts import ids_of_handles_seen
    from trending_arxiv.settings import CommonSettings

    settings = CommonSettings()
    es = Elasticsearch(**settings.elasticsearch_client_kwargs())
    return lambda refs: ids_of_handles_seen(es, settings, refs)


@follows_app.command("set")
def set_command(
    user: Annotated[str, typer.Argument(help="Whose follow list this is (any name).")],
    file: Annotated[
        Path,
        typer.Argument(
            help="One account a line (@name, name.bsky.social, @user@instance, "
            "x:12345, did:plc:...), a JSON list, or the X producer's JSON."
        ),
    ],
) -> None:
    """Store a user's follow list (handles or ids), for `top --user`."""
    from producers.directory import directory_for
    from trending_arxiv.cli.queries import accounts_from_follow_file

    try:
        refs = [parse_account_ref(entry) for entry in accounts_from_follow_file(file)]
    except (ValueError, OSError) as error:
        raise _fail(f"{file}: {error}", code=2) from error
    try:
        resolution = resolve(refs, _seen_lookup(), directory_for)
    except Exception as error:  # the mentions index could not be asked
        raise _fail(f"{file}: could not look handles up in Elasticsearch: {error}") from error
    _store(user, resolution, str(file))


@follows_app.command("import")
def import_command(
    network: Annotated[str, typer.Argument(help="x, bluesky or mastodon.")],
    handle: Annotated[
        str, typer.Argument(help="Whose follows: @name, name.bsky.social or @user@instance.")
    ],
    user: Annotated[
        str | None, typer.Option(help="Store as this user (default: the handle).")
    ] = None,
) -> None:
    """Pull a person's real follow list from their network and store it."""
    from producers.directory import DirectoryError, directory_for

    who = handle.strip().removeprefix("@") if network != "mastodon" else handle.strip()
    try:
        directory = directory_for(network)
        people = directory.following(who.removeprefix("@"))
    except (ValueError, DirectoryError) as error:
        raise _fail(f"{network} {handle}: {error}") from error
    resolution = Resolution(
        accounts=[p.account for p in people],
        handles={p.account: p.handle for p in people if p.handle},
        from_network=len(people),
    )
    _store(user or who.removeprefix("@"), resolution, f"{network} {handle}")
