"""A small threaded HTTP/1.1 server on 127.0.0.1 for serving recorded payloads.

Subclasses implement `handle(request, reply)`. `Reply` can answer at once, stream a
chunked body (as X's stream and Mastodon's SSE do), or drop the connection mid-body to
simulate a network failure.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """One request the fake server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """Writes the response of one request."""

    handler: BaseHTTPRequestHandler
    stopping: threading.Event
    _chunked: bool = field(default=False)

    def send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        h = self.handler
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()

    def send_json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        self.send(status, json.dumps(doc).encode(), headers=headers)

    def start_stream(self, content_type: str = "application/json") -> None:
        h = self.handler
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        self._chunked = True

    def chunk(self, data: bytes) -> None:
        if data:
            self.handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.handler.wfile.flush()

    def end_stream(self) -> None:
        self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()

    def drop(self) -> None:
        """Close the socket without finishing the body: the client sees a broken stream."""
        self.handler.wfile.flush()
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)
        self.handler.close_connection = True

    def hold(self, keep_alive: bytes = b"\r\n", every: float = 0.1) -> None:
        """Keep the stream open, sending keep-alives, until the server stops."""
        try:
            while not self.stopping.wait(every):
                self.chunk(keep_alive)
        except OSError:
            return
        self.drop()


class FakeHttpServer:
    """Base class: a threaded server on an ephemeral loopback port."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _dispatch(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    self.command, parts.path, parse_qs(parts.query), dict(self.headers), body
                )
                with fake._lock:
                    fake.requests.append(request)
                try:
                    fake.handle(request, Reply(self, fake.stopping))
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = _dispatch
            do_POST = _dispatch
            do_DELETE = _dispatch

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle(self, request: Request, reply: Reply) -> None:
        reply.send_json(404, {"title": "Not Found", "path": request.path})

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
