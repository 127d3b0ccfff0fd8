"""A fake Mastodon instance: SSE streaming and timelines from recorded statuses.

Streaming connections (`/api/v1/streaming/public`, `/api/v1/streaming/hashtag?tag=`)
follow a script of `Serve` steps (SSE bytes, then drop/hold/end); timelines
(`/api/v1/timelines/public`, `/api/v1/timelines/tag/<tag>`) answer from `statuses` like
Mastodon: newest first, `min_id`/`since_id`/`limit` honoured.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any

from tests.fakes.http import FakeHttpServer, Reply, Request
from tests.fakes.x_api import Serve


def sse_update(status: bytes) -> bytes:
    """One `update` event in Mastodon's SSE framing."""
    return b"event: update\ndata: " + status.strip() + b"\n\n"


class FakeMastodon(FakeHttpServer):
    """See the module docstring."""

    def __init__(self, statuses: list[bytes] | None = None) -> None:
        super().__init__()
        self.stream_script: deque[Serve] = deque()
        self.statuses = sorted(statuses or [], key=lambda raw: int(json.loads(raw)["id"]))
        self.stream_connections = 0
        # Statuses that appear on the timeline while a dropped stream is down.
        self.publish_on_drop: list[bytes] = []
        self._state = threading.Lock()

    def handle(self, request: Request, reply: Reply) -> None:
        if request.path.startswith("/api/v1/streaming"):
            self._stream(reply)
        elif request.path.startswith("/api/v1/timelines/"):
            self._timeline(request, reply)
        else:
            super().handle(request, reply)

    def _stream(self, reply: Reply) -> None:
        with self._state:
            self.stream_connections += 1
            step = self.stream_script.popleft() if self.stream_script else Serve(b"", "hold")
        reply.start_stream("text/event-stream")
        reply.chunk(step.data)
        if step.then == "drop":
            with self._state:
                self.statuses = sorted(
                    self.statuses + self.publish_on_drop, key=lambda raw: int(json.loads(raw)["id"])
                )
                self.publish_on_drop = []
            reply.drop()
        elif step.then == "end":
            reply.end_stream()
        else:
            reply.hold(keep_alive=b":thump\n\n")

    def _timeline(self, request: Request, reply: Reply) -> None:
        limit = int(request.param("limit") or 20)
        min_id = request.param("min_id")
        since_id = request.param("since_id")
        docs: list[tuple[int, Any]] = [(int(json.loads(raw)["id"]), raw) for raw in self.statuses]
        if min_id:
            # The `limit` statuses right after min_id (then shown newest first).
            chosen = [d for d in docs if d[0] > int(min_id)][:limit]
        else:
            floor = int(since_id) if since_id else -1
            chosen = [d for d in docs if d[0] > floor][-limit:]
        body = b"[" + b",".join(raw.strip() for _, raw in reversed(chosen)) + b"]"
        reply.send(200, body)
