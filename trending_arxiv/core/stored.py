"""How the worker stores a paper's counting summary and its account entries: JSON text.

One string a value instead of dicts of lists: ~400 bytes a paper summary instead of
~1,900, ~240 bytes an account entry with its key instead of ~520 (the 1M bench corpus,
where there are more account entries than posts). Faust recovers a table into what its
changelog holds, so memory and changelog keep the same form. Values stored as dicts by
older versions still read.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from trending_arxiv.core.buckets import from_keyed
from trending_arxiv.core.counting import PaperState


def pack_account_entry(posts: dict[str, list[Any]]) -> str:
    """An account entry as the worker stores it: its JSON text, one string instead of a
    dict of lists (~240 bytes with its key instead of ~520 on the 1M bench corpus, where
    there are more entries than posts: one per (paper, account)).
    `unpack_account_entry` reverses it."""
    return orjson.dumps(posts).decode()


def unpack_account_entry(stored: Any) -> dict[str, list[Any]] | None:
    """A stored account entry (packed, or a dict as older versions stored it), or None."""
    return _unpack(stored)


def pack_summary(state: PaperState) -> str:
    """A paper summary as the worker stores it between batches: its JSON text (~400
    bytes a paper on the bench corpus instead of ~1,900 as dicts of lists of numbers).
    `unpack_summary` reverses it."""
    return orjson.dumps(state).decode()


def unpack_summary(stored: Any) -> PaperState | None:
    """A stored paper summary as a fresh dict (packed, or a dict as older versions
    stored it; None for none). Summaries stored before session 19 keep their buckets
    as `{str(end): [posts, latest, weight]}`: they are read into columns."""
    state = _unpack(stored)
    if state is not None and isinstance(state.get("min"), dict):
        state = {**state, "min": from_keyed(state["min"]), "hr": from_keyed(state["hr"])}
    return cast(PaperState | None, state)


def _unpack(stored: Any) -> Any:
    """A value the worker packs as JSON text, read back; dicts stored unpacked by older
    versions (and None) are returned as they are."""
    return orjson.loads(stored) if isinstance(stored, str) else stored
