"""Follow lists: stored per user in the follows index, read by the per-user rankings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from trending_arxiv.core.models import to_utc_iso
from trending_arxiv.core.vocabulary import (
    MAX_USER_NAME,
)
from trending_arxiv.settings import CommonSettings

#: A network's name in an account id ("x:123" -> "x").
SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
#: Elasticsearch's default `index.max_terms_count`, the most a terms lookup may return.
MAX_FOLLOWS = 65_536


class UnknownUserError(ValueError, LookupError):
    """A per-user ranking for a user with no stored follow list (HTTP 404, not 400)."""


def follows_filter(settings: CommonSettings, user: str) -> dict[str, Any]:
    """Posts of the accounts `user` follows; matches nothing when no list is stored.

    Elasticsearch reads the list itself (a terms lookup), so a ranking is one request;
    whether the list exists is only asked when nothing matched (see `_top_from_mentions`).
    """
    lookup = {"index": settings.indices.follows, "id": user, "path": "accounts"}
    return {"terms": {"account": lookup}}


# -- follow lists ------------------------------------------------------------------------------
def check_user(user: str) -> None:
    if not isinstance(user, str) or not user.strip() or len(user) > MAX_USER_NAME:
        raise ValueError(f"user must be a non-empty name of at most {MAX_USER_NAME} characters")
    if any(ord(c) < 32 for c in user):
        raise ValueError("user must not contain control characters")


def normalize_accounts(accounts: list[str]) -> list[str]:
    """Validated, de-duplicated, sorted `source:author_id` values."""
    cleaned: set[str] = set()
    for raw in accounts:
        if not isinstance(raw, str):
            raise ValueError(f"an account must be a string like 'x:12345', got {raw!r}")
        account = raw.strip()
        source, _, author = account.partition(":")
        if not SOURCE_NAME.match(source) or not author or len(account) > 512:
            raise ValueError(
                f"not an account: {raw!r} (expected 'source:author_id', e.g. 'x:12345')"
            )
        cleaned.add(account)
    if len(cleaned) > MAX_FOLLOWS:
        raise ValueError(f"a follow list holds at most {MAX_FOLLOWS} accounts")
    return sorted(cleaned)


def store_follow_list(
    es: Elasticsearch,
    settings: CommonSettings,
    user: str,
    accounts: list[str],
    refresh: bool = True,
    handles: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Store (replace) a user's follow list; returns the stored document.

    `handles` (account -> handle, as resolved) is kept for display, never searched."""
    check_user(user)
    doc: dict[str, Any] = {
        "user": user,
        "accounts": normalize_accounts(accounts),
        "updated_at": to_utc_iso(datetime.now(UTC)),
    }
    if handles:
        doc["handles"] = {a: h for a, h in sorted(handles.items()) if a in doc["accounts"]}
    es.index(
        index=settings.indices.follows, id=user, document=doc,
        refresh=refresh,
    )  # fmt: skip
    return doc


def get_follow_list(es: Elasticsearch, settings: CommonSettings, user: str) -> dict | None:
    """A user's stored follow list, or None."""
    check_user(user)
    try:
        response = es.get(index=settings.indices.follows, id=user)
    except NotFoundError:
        return None
    source: dict[str, Any] = response["_source"]
    return source
