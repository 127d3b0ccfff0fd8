"""Running the API: `serve_command` (the `trending-arxiv serve` Typer command) and a
background server for the demo and the tests."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Annotated, Self

import typer
import uvicorn

from trending_arxiv.runtime import configure_logging, run_service
from trending_arxiv.settings import CommonSettings
from trending_arxiv.web.api import create_api


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for all).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the web page and the HTTP API (OpenAPI docs at /docs) until stopped."""
    settings = CommonSettings()
    typer.echo(
        f"Trending arXiv on http://{host}:{port}/ (API docs /docs), "
        f"namespace {settings.namespace!r}, Elasticsearch {settings.elasticsearch_url_redacted}",
        err=True,
    )
    configure_logging(settings.log_level)
    config = uvicorn.Config(
        create_api(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's records go through our handler, like every process's
        proxy_headers=True,
        # Open event streams (/api/stream) must not hold a stopping server for long.
        timeout_graceful_shutdown=3,
    )
    run_service(UvicornService(uvicorn.Server(config)))


class UvicornService:
    """A uvicorn server as a `runtime.Service` (it also catches the signals while it serves)."""

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server

    def run(self) -> None:
        self.server.run()

    def request_stop(self) -> None:
        self.server.should_exit = True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class BackgroundServer:
    """The app served by uvicorn in a daemon thread: `with BackgroundServer(s) as srv:`."""

    def __init__(self, settings: CommonSettings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(
            create_api(settings),
            host=host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=3,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> Self:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
