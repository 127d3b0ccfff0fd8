"""Accounts as people write them: `@name` (X), `name.bsky.social` or any domain (Bluesky),
`@user@instance` (Mastodon), and the ids the pipeline counts by (`x:12345`,
`did:plc:...`, `mastodon:109...`). Pure: reading only, no lookups.

A follow list stores ids (`source:author_id`, the `account` field of every mention);
handles are resolved to ids first (from the posts already seen, else the network's API).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_X_NAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
# A DNS name of at least two labels (Bluesky handles are domain names).
_DOMAIN = re.compile(r"^(?=.{3,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}$")
_DID = re.compile(r"^did:(plc|web):[A-Za-z0-9._:%-]{1,2000}$")
_MASTODON_USER = re.compile(r"^[A-Za-z0-9_]{1,30}$")
_HOST = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$")


@dataclass(frozen=True)
class AccountRef:
    """One entry of a follow list: an id (`account` ready) or a handle to resolve."""

    source: str
    value: str  # the author id, or the normalised handle (no leading @)
    is_handle: bool
    given: str  # as written, for messages

    @property
    def account(self) -> str:
        """`source:author_id` (only for ids)."""
        if self.is_handle:
            raise ValueError(f"{self.given!r} is a handle: resolve it first")
        return f"{self.source}:{self.value}"

    @property
    def shown(self) -> str:
        """How the handle is written on its network."""
        if self.source == "mastodon":
            return f"@{self.value}"
        return f"@{self.value}" if self.source == "x" else self.value


def _handle(source: str, value: str, given: str) -> AccountRef:
    return AccountRef(source, value, True, given)


def _id(source: str, value: str, given: str) -> AccountRef:
    return AccountRef(source, value, False, given)


def _mastodon_handle(text: str, given: str) -> AccountRef | None:
    user, _, host = text.removeprefix("@").partition("@")
    if _MASTODON_USER.match(user) and _HOST.match(host.lower()):
        return _handle("mastodon", f"{user.lower()}@{host.lower()}", given)
    return None


def parse_account_ref(text: str) -> AccountRef:
    """Read one follow-list entry; ValueError says what forms are accepted."""
    if not isinstance(text, str):
        raise ValueError(f"an account must be text, got {text!r}")
    given = text
    text = text.strip()
    if not text or len(text) > 512 or any(ord(c) < 32 for c in text):
        raise ValueError(f"not an account: {given!r}")
    low = text.lower()
    if _DID.match(text):
        return _id("bluesky", text, given)
    source, colon, rest = text.partition(":")
    if colon and _SOURCE.match(source) and rest:
        if source == "x":
            name = rest.removeprefix("@")
            if name.isdigit():
                return _id("x", name, given)
            if _X_NAME.match(name):
                return _handle("x", name.lower(), given)
        elif source == "bluesky":
            if _DID.match(rest):
                return _id("bluesky", rest, given)
            name = rest.removeprefix("@").lower()
            if _DOMAIN.match(name):
                return _handle("bluesky", name, given)
        elif source == "mastodon":
            if rest.isdigit():
                return _id("mastodon", rest, given)
            found = _mastodon_handle(rest, given)
            if found:
                return found
        elif not rest.startswith("//"):  # another network's `source:id`, not a URL
            return _id(source, rest, given)
        raise ValueError(f"not a {source} account: {given!r}{_FORMS}")
    if "@" in low[1:]:  # user@instance or @user@instance
        found = _mastodon_handle(text, given)
        if found:
            return found
    name = low.removeprefix("@")
    if "." not in name and _X_NAME.match(name) and text.startswith("@"):
        return _handle("x", name, given)
    if _DOMAIN.match(name):
        return _handle("bluesky", name, given)
    if name.isdigit():
        raise ValueError(f"{given!r} could be an id on several networks: write x:{name}{_FORMS}")
    raise ValueError(f"not an account: {given!r}{_FORMS}")


_FORMS = (
    " (accepted: @name or x:12345 for X; name.bsky.social, any domain handle or did:plc:... "
    "for Bluesky; @user@instance or mastodon:109... for Mastodon)"
)
