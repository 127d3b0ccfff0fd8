"""A fake X API v2 serving recorded payloads: filtered stream, rules, recent search, users.

Stream connections follow a script of steps (serve bytes then drop/hold/end, or answer
with an HTTP error such as the recorded 429); when the script runs out the stream is held
open with keep-alives. Recent search pages chain by their own recorded `meta.next_token`;
the first `search_rate_limited` requests get the recorded 429 text with a reset header.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.http import FakeHttpServer, Reply, Request
from tests.fakes.paths import REAL_FIXTURES

STREAM_PATH = "/2/tweets/search/stream"
RULES_PATH = "/2/tweets/search/stream/rules"
SEARCH_PATH = "/2/tweets/search/recent"


@dataclass
class Serve:
    """Serve `data` on a 200 stream, then `drop` (broken), `hold` (keep-alives) or `end`."""

    data: bytes
    then: Literal["drop", "hold", "end"] = "hold"


@dataclass
class Fail:
    """Answer a stream connection with an HTTP error."""

    status: int
    body: bytes
    content_type: str = "application/problem+json"


@dataclass
class FakeXApi(FakeHttpServer):
    """See the module docstring. Set the scripts before starting the client."""

    stream_script: deque[Serve | Fail] = field(default_factory=deque)
    search_pages: list[bytes] = field(default_factory=list)
    search_rate_limited: int = 0
    rule_max_length: int = 512
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    following_pages: list[list[dict[str, Any]]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    stream_connections: int = 0

    def __post_init__(self) -> None:
        super().__init__()
        self._state = threading.Lock()
        self._next_rule_id = 1_000

    # -- dispatch --

    def handle(self, request: Request, reply: Reply) -> None:
        path = request.path
        if path == STREAM_PATH:
            self._stream(reply)
        elif path == RULES_PATH:
            self._rules(request, reply)
        elif path == SEARCH_PATH:
            self._search(request, reply)
        elif path.startswith("/2/users/by/username/"):
            user = self.users.get(path.rsplit("/", 1)[1].lower())
            if user is None:
                reply.send_json(200, {"errors": [{"title": "Not Found Error"}]})
            else:
                reply.send_json(200, {"data": user})
        elif path.startswith("/2/users/") and path.endswith("/following"):
            self._following(request, reply)
        else:
            super().handle(request, reply)

    # -- stream --

    def _stream(self, reply: Reply) -> None:
        with self._state:
            self.stream_connections += 1
            step = self.stream_script.popleft() if self.stream_script else Serve(b"", "hold")
        if isinstance(step, Fail):
            reply.send(step.status, step.body, content_type=step.content_type)
            return
        reply.start_stream()
        reply.chunk(step.data)
        if step.then == "drop":
            reply.drop()
        elif step.then == "end":
            reply.end_stream()
        else:
            reply.hold()

    # -- rules --

    def _rules(self, request: Request, reply: Reply) -> None:
        if request.method == "GET":
            with self._state:
                data = list(self.rules)
            doc: dict[str, Any] = {"meta": {"sent": _now(), "result_count": len(data)}}
            if data:
                doc["data"] = data
            reply.send_json(200, doc)
            return
        body = request.json() or {}
        if "delete" in body:
            ids = {str(i) for i in body["delete"].get("ids", [])}
            with self._state:
                before = len(self.rules)
                self.rules = [r for r in self.rules if r["id"] not in ids]
                deleted = before - len(self.rules)
            reply.send_json(
                200,
                {"meta": {"sent": _now(), "summary": {"deleted": deleted, "not_deleted": 0}}},
            )
            return
        added, errors = [], []
        with self._state:
            for rule in body.get("add", []):
                if len(rule["value"]) > self.rule_max_length:
                    errors.append(
                        {"value": rule["value"], "title": "RuleTooLong", "details": ["too long"]}
                    )
                    continue
                self._next_rule_id += 1
                entry = {"id": str(self._next_rule_id), "value": rule["value"]}
                if rule.get("tag"):
                    entry["tag"] = rule["tag"]
                self.rules.append(entry)
                added.append(entry)
        summary = {"created": len(added), "not_created": len(errors)}
        doc = {"data": added, "meta": {"sent": _now(), "summary": summary}}
        if errors:
            doc["errors"] = errors
        reply.send_json(201, doc)

    # -- search --

    def _search(self, request: Request, reply: Reply) -> None:
        with self._state:
            limited = self.search_rate_limited > 0
            if limited:
                self.search_rate_limited -= 1
        if limited:
            reply.send(
                429,
                (REAL_FIXTURES / "x_v2_postman_rate_limit_429.txt").read_bytes(),
                content_type="text/plain",
                headers={
                    "x-rate-limit-limit": "450",
                    "x-rate-limit-remaining": "0",
                    "x-rate-limit-reset": str(int(time.time()) + 1),
                },
            )
            return
        pages = [json.loads(p) for p in self.search_pages]
        token = request.param("next_token")
        since_id = request.param("since_id")
        if not pages or (since_id and int(since_id) >= int(pages[0]["meta"]["newest_id"])):
            reply.send_json(200, {"meta": {"result_count": 0}})
            return
        if token is None:
            reply.send(200, self.search_pages[0])
            return
        for previous, page in zip(pages, self.search_pages[1:], strict=False):
            if previous["meta"].get("next_token") == token:
                reply.send(200, page)
                return
        reply.send_json(400, {"title": "Invalid Request", "detail": f"bad next_token {token}"})

    # -- follow lists --

    def _following(self, request: Request, reply: Reply) -> None:
        token = request.param("pagination_token")
        index = int(token.removeprefix("page-")) if token else 0
        if index >= len(self.following_pages):
            reply.send_json(200, {"meta": {"result_count": 0}})
            return
        page = self.following_pages[index]
        meta: dict[str, Any] = {"result_count": len(page)}
        if index + 1 < len(self.following_pages):
            meta["next_token"] = f"page-{index + 1}"
        reply.send_json(200, {"data": page, "meta": meta})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
