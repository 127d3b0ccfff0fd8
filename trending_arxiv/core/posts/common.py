"""What every network's parser shares: the post shape, the error, small field readers,
and `_post`, the fast constructor of the typed paths."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from trending_arxiv.core.ids import (
    add_arxiv_ids_in_text,
    arxiv_id_from_url,
    arxiv_id_from_url_cached,
    arxiv_ids_in_text,
)


class PostParseError(ValueError):
    """The input is not a post payload we understand; the message says why."""


@dataclass(frozen=True, slots=True)
class NormalizedPost:
    """One post, whatever network it came from."""

    post_id: str
    source: str
    kind: str
    author_id: str | None
    author_handle: str | None
    created_at: datetime | None
    text: str
    links: tuple[str, ...]
    arxiv_ids: tuple[str, ...]
    ref_post_id: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``created_at`` as ISO-8601 UTC with a ``Z``."""
        created = self.created_at
        return {
            "post_id": self.post_id,
            "source": self.source,
            "kind": self.kind,
            "author_id": self.author_id,
            "author_handle": self.author_handle,
            "created_at": None if created is None else _iso_z(created),
            "text": self.text,
            "links": list(self.links),
            "arxiv_ids": list(self.arxiv_ids),
            "ref_post_id": self.ref_post_id,
        }


def _iso_z(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------
# Small helpers shared by all networks
# ---------------------------------------------------------------------------------


def _papers(links: Iterable[str], texts: Iterable[str], extra: Iterable[str] = ()) -> set[str]:
    ids = set(extra)
    for url in links:
        ident = arxiv_id_from_url(url)
        if ident is not None:
            ids.add(ident)
    for text in texts:
        if text:
            ids.update(arxiv_ids_in_text(text))
    return ids


def _id_str(value: object, what: str, allow_int: bool = False) -> str:
    """An ID given as a non-empty string (or an int, as X payloads may do)."""
    if isinstance(value, str) and value:
        return value
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise PostParseError(f"{what} must be a non-empty string, got {_describe(value)}")


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _text(value: object, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise PostParseError(f"{what} must be a string, got {_describe(value)}")


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value!r}"[:80]


def _dict(value: object, what: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise PostParseError(f"{what} must be an object, got {_describe(value)}")


def _dicts(value: object) -> list[dict[str, Any]]:
    """The objects of an optional list field (absent/null means none)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PostParseError(f"expected an array, got {_describe(value)}")
    return [v for v in value if isinstance(v, dict)]


def _iso_time(value: object) -> datetime | None:
    """ISO-8601 timestamp as aware UTC; None when absent or unparsable."""
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    tz = dt.tzinfo
    if tz is UTC:  # the usual "...Z" form: nothing to convert
        return dt
    if tz is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


class _PostBuilder:
    """A settable twin of `NormalizedPost`: the same slots in the same order.

    A frozen dataclass sets each field in ``__init__`` through ``object.__setattr__``,
    several times slower than a plain slot store. The fast path fills one of these
    with plain stores and then makes it a `NormalizedPost` by assigning ``__class__``,
    which CPython allows exactly between classes of identical layout (TypeError
    otherwise). The result is an ordinary, frozen `NormalizedPost`.
    """

    __slots__ = NormalizedPost.__slots__

    post_id: str
    source: str
    kind: str
    author_id: str | None
    author_handle: str | None
    created_at: datetime | None
    text: str
    links: tuple[str, ...]
    arxiv_ids: tuple[str, ...]
    ref_post_id: str | None


_new_builder = object.__new__


def _post(
    post_id: str,
    source: str,
    kind: str,
    author_id: str | None,
    author_handle: str | None,
    created_at: datetime | None,
    text: str,
    links: tuple[str, ...],
    arxiv_ids: tuple[str, ...],
    ref_post_id: str | None,
) -> NormalizedPost:
    """``NormalizedPost(...)`` with the same arguments, more than twice as fast."""
    post: _PostBuilder = _new_builder(_PostBuilder)
    post.post_id = post_id
    post.source = source
    post.kind = kind
    post.author_id = author_id
    post.author_handle = author_handle
    post.created_at = created_at
    post.text = text
    post.links = links
    post.arxiv_ids = arxiv_ids
    post.ref_post_id = ref_post_id
    post.__class__ = NormalizedPost  # type: ignore[assignment]
    return post  # type: ignore[return-value]


# A field added to NormalizedPost must be set above too: fail at import, not later.
if _post.__code__.co_varnames[: _post.__code__.co_argcount] != tuple(
    f.name for f in fields(NormalizedPost)
):
    raise RuntimeError("_post must take and set exactly the fields of NormalizedPost")


def _ids(links: list[str], text: str, more_texts: list[str] | None = None) -> tuple[str, ...]:
    """`_papers` for the fast path: the sorted IDs of the links and texts, as a tuple."""
    ids: set[str] = set()
    for url in links:
        ident = arxiv_id_from_url_cached(url)
        if ident is not None:
            ids.add(ident)
    if text:
        add_arxiv_ids_in_text(text, ids)
    if more_texts:
        for other in more_texts:
            if other:
                add_arxiv_ids_in_text(other, ids)
    if len(ids) > 1:
        return tuple(sorted(ids))
    return tuple(ids)
