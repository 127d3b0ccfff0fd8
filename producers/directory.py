"""Who is who on each network: a handle's id, and whom an account follows.

- Bluesky (public AppView, no login): `com.atproto.identity.resolveHandle` and
  `app.bsky.graph.getFollows` (paged by `cursor`);
- X (API v2 through tweepy, an app bearer token): users lookup by username and
  `/2/users/:id/following` (paged by `pagination_token`);
- Mastodon (the configured instance): `GET /api/v1/accounts/lookup?acct=` and
  `GET /api/v1/accounts/:id/following` (paged by the `Link: rel="next"` header).

Every base URL is a setting, so tests point the clients at local servers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import httpx

from producers.settings import BlueskyProducerSettings, MastodonProducerSettings, XProducerSettings
from producers.x_api import XApiClient

MAX_PAGES = 1000  # 100k accounts on Bluesky; X allows 1000 a page, Mastodon 80


class DirectoryError(RuntimeError):
    """The network could not be asked (unreachable, refused, rate limited)."""


@dataclass(frozen=True)
class Person:
    """An account: its id on its network and its handle."""

    source: str
    author_id: str
    handle: str | None

    @property
    def account(self) -> str:
        return f"{self.source}:{self.author_id}"


class Directory(Protocol):
    source: str

    def lookup(self, handle: str) -> Person | None: ...

    def following(self, handle: str) -> list[Person]: ...


def _get(http: httpx.Client, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
    try:
        return http.get(url, params=params)
    except httpx.HTTPError as error:
        raise DirectoryError(f"{url}: {error}") from error


def _fail(response: httpx.Response) -> DirectoryError:
    return DirectoryError(
        f"{response.request.url} answered {response.status_code}: {response.text[:200]}"
    )


class BlueskyDirectory:
    source = "bluesky"

    def __init__(self, settings: BlueskyProducerSettings, http: httpx.Client | None = None) -> None:
        self.base = settings.bluesky_api_base_url
        self.http = http or httpx.Client(timeout=20.0)

    def lookup(self, handle: str) -> Person | None:
        url = f"{self.base}/xrpc/com.atproto.identity.resolveHandle"
        response = _get(self.http, url, {"handle": handle})
        if response.status_code == 400:  # {"error": "InvalidRequest", ...}: no such handle
            return None
        if response.status_code != 200:
            raise _fail(response)
        did = response.json().get("did")
        return Person("bluesky", str(did), handle) if did else None

    def following(self, handle: str) -> list[Person]:
        url = f"{self.base}/xrpc/app.bsky.graph.getFollows"
        people: list[Person] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = {"actor": handle, "limit": 100, **({"cursor": cursor} if cursor else {})}
            response = _get(self.http, url, params)
            if response.status_code == 400:
                raise DirectoryError(f"Bluesky has no account {handle}: {response.text[:200]}")
            if response.status_code != 200:
                raise _fail(response)
            page = response.json()
            follows = page.get("follows") or []
            people += [Person("bluesky", f["did"], f.get("handle")) for f in follows]
            cursor = page.get("cursor")
            if not cursor or not follows:
                break
        return people


class MastodonDirectory:
    source = "mastodon"

    def __init__(
        self, settings: MastodonProducerSettings, http: httpx.Client | None = None
    ) -> None:
        self.base = settings.mastodon_base_url
        token = settings.access_token()
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        self.http = http or httpx.Client(timeout=20.0, headers=headers)

    def lookup(self, handle: str) -> Person | None:
        response = _get(self.http, f"{self.base}/api/v1/accounts/lookup", {"acct": handle})
        if response.status_code == 404:  # {"error": "Record not found"}
            return None
        if response.status_code != 200:
            raise _fail(response)
        account = response.json()
        return Person("mastodon", str(account["id"]), _full_acct(account, self.base))

    def following(self, handle: str) -> list[Person]:
        me = self.lookup(handle)
        if me is None:
            raise DirectoryError(f"Mastodon ({self.base}) has no account {handle}")
        url: str | None = f"{self.base}/api/v1/accounts/{me.author_id}/following"
        params: dict[str, Any] | None = {"limit": 80}
        people: list[Person] = []
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = _get(self.http, url, params)
            if response.status_code != 200:
                raise _fail(response)
            people += [
                Person("mastodon", str(a["id"]), _full_acct(a, self.base)) for a in response.json()
            ]
            following = response.links.get("next", {}).get("url")
            url, params = (str(following), None) if following else (None, None)
        return people


def _full_acct(account: dict[str, Any], base: str) -> str:
    """`user@instance` (a local account's `acct` has no instance)."""
    acct = str(account.get("acct") or account.get("username") or "")
    return acct if "@" in acct else f"{acct}@{httpx.URL(base).netloc.decode()}"


class XDirectory:
    source = "x"

    def __init__(self, settings: XProducerSettings) -> None:
        token = settings.bearer_token()  # ValueError naming the variables when missing
        self.api = XApiClient(token.get_secret_value(), settings.x_api_base_url)

    def _call(self, what: str, call: Any) -> dict[str, Any]:
        import tweepy

        try:
            doc: dict[str, Any] = call().json()
        except (tweepy.TweepyException, OSError) as error:
            raise DirectoryError(f"X {what}: {error}") from error
        return doc

    def lookup(self, handle: str) -> Person | None:
        doc = self._call("users lookup", lambda: self.api.get_user(username=handle))
        user = doc.get("data")
        return Person("x", str(user["id"]), user.get("username")) if user else None

    def following(self, handle: str) -> list[Person]:
        me = self.lookup(handle)
        if me is None:
            raise DirectoryError(f"X has no user @{handle}")
        people: list[Person] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"max_results": 1000, "user_fields": ["username"]}
            if token:
                params["pagination_token"] = token
            page = self._call(
                "following", partial(self.api.get_users_following, me.author_id, **params)
            )
            people += [Person("x", str(u["id"]), u.get("username")) for u in page.get("data") or []]
            token = (page.get("meta") or {}).get("next_token")
            if not token:
                break
        return people


def directory_for(source: str) -> Directory:
    """The network's directory, configured from the environment (TRENDING_*)."""
    if source == "bluesky":
        return BlueskyDirectory(BlueskyProducerSettings())
    if source == "mastodon":
        return MastodonDirectory(MastodonProducerSettings())
    if source == "x":
        return XDirectory(XProducerSettings())
    raise ValueError(f"no directory for {source!r}: one of x, bluesky, mastodon")
