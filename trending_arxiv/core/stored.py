"""How the worker stores a paper's counting summary and its account entries: JSON text.

One value instead of dicts of lists: ~400 bytes a paper summary instead of ~1,900, ~240
bytes an account entry with its key instead of ~520 (the 1M bench corpus, where there
are more account entries than posts). In memory the text is bytes (`kept_json`): a
bytes object's header is 16 bytes smaller than a str's, ~34 MB over the ~2.1M ledger
and account values of 1M posts. The changelog holds it as a JSON string
(`streams.direct_table`), which Faust recovers into a str: both read alike. Values
stored as dicts by older versions still read.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from trending_arxiv.core.buckets import from_keyed
from trending_arxiv.core.counting import PaperState
from trending_arxiv.core.json_bytes import kept_json


def pack_account_entry(posts: dict[str, list[Any]]) -> bytes:
    """An account entry as the worker stores it: its JSON text, one value instead of a
    dict of lists (~240 bytes with its key instead of ~520 on the 1M bench corpus, where
    there are more entries than posts: one per (paper, account)).
    `unpack_account_entry` reverses it."""
    return kept_json(posts)


def unpack_account_entry(stored: Any) -> dict[str, list[Any]] | None:
    """A stored account entry (packed, or a dict as older versions stored it), or None."""
    return _unpack(stored)


def pack_summary(state: PaperState) -> bytes:
    """A paper summary as the worker stores it between batches: its JSON text (~400
    bytes a paper on the bench corpus instead of ~1,900 as dicts of lists of numbers).
    `unpack_summary` reverses it."""
    return kept_json(state)


def unpack_summary(stored: Any) -> PaperState | None:
    """A stored paper summary as a fresh dict (packed, or a dict as older versions
    stored it; None for none). Summaries stored before session 19 keep their buckets
    as `{str(end): [posts, latest, weight]}`: they are read into columns."""
    state = _unpack(stored)
    if state is not None and isinstance(state.get("min"), dict):
        state = {**state, "min": from_keyed(state["min"]), "hr": from_keyed(state["hr"])}
    return cast(PaperState | None, state)


def _unpack(stored: Any) -> Any:
    """A value the worker packs as JSON text (bytes, or a str recovered from the
    changelog), read back; dicts stored unpacked by older versions (and None) are
    returned as they are."""
    return orjson.loads(stored) if isinstance(stored, bytes | str) else stored
