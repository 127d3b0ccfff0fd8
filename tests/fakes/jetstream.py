"""A fake Bluesky Jetstream: a websocket server replaying recorded events.

Like Jetstream it honours `wantedCollections` (commit events of other collections are not
sent; identity/account events always are) and `cursor` (replay events with
`time_us >= cursor`, in time order). With `compress=true` and a dictionary it sends
zstd-compressed binary frames. `drop_after` makes the next connections end abruptly after
that many events, to simulate a failing host.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import zstandard
from websockets.sync.server import Server, ServerConnection, serve

from tests.fakes.paths import REAL_FIXTURES

CORPUS = REAL_FIXTURES / "bsky_jetstream_v1_corpus_window.jsonl"


class FakeJetstream:
    """Serves `events` (raw JSON lines) to every connection; see module docstring."""

    def __init__(self, events: list[bytes] | None = None, dictionary: bytes | None = None) -> None:
        self.events = events if events is not None else load_events(CORPUS)
        self.dictionary = dictionary
        self.connections: list[dict[str, list[str]]] = []
        self.drop_after: deque[int] = deque()
        self.delay = 0.0  # seconds between events, to make a run last
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server: Server = serve(self._handle, "127.0.0.1", 0, compression=None)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/subscribe"

    def _selected(self, query: dict[str, list[str]]) -> list[bytes]:
        wanted = set(query.get("wantedCollections", []))
        cursor = int(query["cursor"][0]) if query.get("cursor") else None
        chosen: list[tuple[int, bytes]] = []
        for raw in self.events:
            doc: dict[str, Any] = json.loads(raw)
            commit = doc.get("commit")
            if wanted and commit is not None and commit.get("collection") not in wanted:
                continue
            if cursor is not None and doc["time_us"] < cursor:
                continue
            chosen.append((doc["time_us"], raw))
        if cursor is not None:
            chosen.sort(key=lambda item: item[0])
        return [raw for _, raw in chosen]

    def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        query = parse_qs(urlsplit(connection.request.path).query)
        with self._lock:
            self.connections.append(query)
            drop_after = self.drop_after.popleft() if self.drop_after else None
        compressor = None
        if query.get("compress") == ["true"] and self.dictionary is not None:
            compressor = zstandard.ZstdCompressor(
                dict_data=zstandard.ZstdCompressionDict(self.dictionary)
            )
        for sent, raw in enumerate(self._selected(query)):
            if drop_after is not None and sent >= drop_after:
                # Abrupt end: no close frame, as when a host goes away.
                connection.socket.close()
                return
            if self.delay and self.stopping.wait(self.delay):
                return
            if compressor is not None:
                connection.send(compressor.compress(raw))
            else:
                connection.send(raw.decode("utf-8"))
        # Live tail: nothing more happens until the client or the server goes.
        while not self.stopping.wait(0.1):
            if connection.state.name != "OPEN":
                return

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_events(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def train_dictionary(events: list[bytes], size: int = 4096) -> bytes:
    """A zstd dictionary trained on the events (stands in for Jetstream's own)."""
    samples: list[bytes | bytearray | memoryview] = [*events] * max(1, 200 // max(1, len(events)))
    return zstandard.train_dictionary(size, samples).as_bytes()
