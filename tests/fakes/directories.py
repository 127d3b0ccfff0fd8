"""Fake Bluesky AppView and Mastodon instance for handles and follow lists.

Mastodon answers with the recorded Account entity (`recorded/mastodon_account_lookup.json`,
other ids and names per account) and the recorded 404 body, and pages follow lists with a
`Link: <...>; rel="next"` header. Bluesky answers in the lexicons' shapes (see
`recorded/SOURCES.md`), paged by `cursor`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.http import FakeHttpServer, Reply, Request

RECORDED = Path(__file__).resolve().parent / "recorded"


@dataclass
class FakeBlueskyAppView(FakeHttpServer):
    """`handles`: handle -> DID; `follows`: actor (handle or DID) -> [(DID, handle)]."""

    handles: dict[str, str] = field(default_factory=dict)
    follows: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    def handle(self, request: Request, reply: Reply) -> None:
        if request.path == "/xrpc/com.atproto.identity.resolveHandle":
            did = self.handles.get((request.param("handle") or "").lower())
            if did is None:
                reply.send_json(
                    400, {"error": "InvalidRequest", "message": "Unable to resolve handle"}
                )
            else:
                reply.send_json(200, {"did": did})
        elif request.path == "/xrpc/app.bsky.graph.getFollows":
            actor = request.param("actor") or ""
            if actor not in self.follows:
                reply.send_json(400, {"error": "InvalidRequest", "message": "Profile not found"})
                return
            everyone = self.follows[actor]
            start = int(request.param("cursor") or 0)
            limit = int(request.param("limit") or 50)
            page = everyone[start : start + limit]
            body: dict[str, Any] = {
                "subject": _profile(self.handles.get(actor, actor), actor),
                "follows": [_profile(did, handle) for did, handle in page],
            }
            if start + limit < len(everyone):
                body["cursor"] = str(start + limit)
            reply.send_json(200, body)
        else:
            super().handle(request, reply)


def _profile(did: str, handle: str) -> dict[str, Any]:
    return {
        "did": did,
        "handle": handle,
        "displayName": handle.split(".")[0].title(),
        "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did}/bafkrei@jpeg",
        "indexedAt": "2024-01-01T00:00:00.000Z",
        "createdAt": "2023-05-01T00:00:00.000Z",
        "labels": [],
    }


@dataclass
class FakeMastodon(FakeHttpServer):
    """`accounts`: acct (user or user@instance) -> id; `following`: id -> [acct]."""

    accounts: dict[str, str] = field(default_factory=dict)
    following: dict[str, list[str]] = field(default_factory=dict)
    page_size: int = 2

    def __post_init__(self) -> None:
        super().__init__()
        self._entity = json.loads((RECORDED / "mastodon_account_lookup.json").read_text())
        self._missing = (RECORDED / "mastodon_account_lookup_404.json").read_bytes()

    def _account(self, acct: str) -> dict[str, Any]:
        username = acct.split("@")[0]
        return {**self._entity, "id": self.accounts[acct], "username": username, "acct": acct,
                "url": f"{self.url}/@{username}"}  # fmt: skip

    def handle(self, request: Request, reply: Reply) -> None:
        if request.path == "/api/v1/accounts/lookup":
            acct = (request.param("acct") or "").removeprefix("@")
            local = acct.split("@")[0] if acct.endswith("@" + self.url.split("//")[1]) else acct
            if local not in self.accounts:
                reply.send(404, self._missing)
            else:
                reply.send_json(200, self._account(local))
        elif request.path.startswith("/api/v1/accounts/") and request.path.endswith("/following"):
            account_id = request.path.split("/")[4]
            everyone = self.following.get(account_id, [])
            start = int(request.param("max_id") or 0)
            page = everyone[start : start + self.page_size]
            headers = {}
            if start + self.page_size < len(everyone):
                nxt = f"{self.url}{request.path}?max_id={start + self.page_size}"
                headers["Link"] = f'<{nxt}>; rel="next"'
            reply.send_json(200, [self._account(a) for a in page], headers=headers)
        else:
            super().handle(request, reply)
