"""The HTTP API and the web page: `create_api(settings)` builds the FastAPI app.

Every `/api/...` endpoint validates its parameters, calls one query function and
returns JSON. Errors are JSON objects `{"error": message, ...}`: bad parameters are
400/422, unknown papers or users 404, and an unreachable or failing Elasticsearch 503
(never a 500 for something the caller or the cluster did).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from trending_arxiv.core.ids import paper_id
from trending_arxiv.core.models import parse_utc, to_utc_iso
from trending_arxiv.core.vocabulary import (
    MAX_RESULT_WINDOW,
    MAX_USER_NAME,
)
from trending_arxiv.search import follows, papers, queries
from trending_arxiv.search.histograms import MAX_HOURS, MAX_IDS, category_counts, hourly_histograms
from trending_arxiv.search.params import RankingParams, SearchParams, TrendingParams
from trending_arxiv.settings import CommonSettings
from trending_arxiv.web.pages import add_pages

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
T = TypeVar("T")

AsOf = Annotated[
    str | None,
    Query(
        max_length=40,
        description="ISO-8601 moment the windows end at (naive means UTC), e.g. "
        "2016-02-09T00:00:00Z. Default: the stream's latest counts.",
    ),
]
Category = Annotated[
    str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9.\-]+$", description="e.g. cs.CL")
]


class ApiProblem(Exception):
    """An error with an HTTP status and a message meant for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _parse_as_of(value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = parse_utc(value)
    except ValueError as error:
        raise ApiProblem(
            422, f"as_of must be an ISO-8601 date-time such as 2016-02-09T00:00:00Z, got {value!r}"
        ) from error
    try:
        return queries.check_as_of(moment)
    except ValueError as error:
        raise ApiProblem(422, str(error)) from error


def _check_page(limit: int, offset: int) -> None:
    if limit + offset > MAX_RESULT_WINDOW:
        raise ApiProblem(
            400, f"offset + limit must not exceed {MAX_RESULT_WINDOW}, got {offset + limit}"
        )


def _es_call(settings: CommonSettings, call: Callable[[], T]) -> T:
    """Run one query; turn bad input and Elasticsearch trouble into ApiProblems."""
    try:
        return call()
    except follows.UnknownUserError as error:
        raise ApiProblem(404, str(error)) from error
    except ValueError as error:
        raise ApiProblem(400, str(error)) from error
    except NotFoundError as error:
        # The only index-level 404 is a missing index: nothing has been indexed yet.
        raise ApiProblem(
            503,
            "the Elasticsearch indices of namespace "
            f"{settings.namespace!r} do not exist yet (has the sink run?): {error.message}",
        ) from error
    except ApiError as error:
        if error.meta.status == 400:
            raise ApiProblem(400, f"Elasticsearch rejected the query: {error.message}") from error
        raise ApiProblem(
            503, f"Elasticsearch answered {error.meta.status}: {error.message}"
        ) from error
    except TransportError as error:
        raise ApiProblem(
            503,
            f"Elasticsearch is unreachable at {settings.elasticsearch_url_redacted}: "
            f"{error.message}",
        ) from error


class _Metrics:
    """Prometheus metrics of one app (own registry, so several apps can coexist)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "trending_api_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "trending_api_request_seconds",
            "Time to answer a request, by route.",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.es_errors = Counter(
            "trending_api_elasticsearch_errors",
            "Requests answered 503 because Elasticsearch failed.",
            registry=self.registry,
        )


def _route_label(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    # Unmatched paths (404s, static files) share one label to keep cardinality bounded.
    return str(path) if path else "other"


def _error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "path"))
        message = str(item.get("msg")).removeprefix("Value error, ")  # pydantic's prefix
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "invalid request"


def create_api(settings: CommonSettings | None = None, es: Elasticsearch | None = None) -> FastAPI:
    """The FastAPI app: JSON API under /api, health, metrics, docs and the page at /."""
    settings = settings or CommonSettings()
    client = es or Elasticsearch(
        **settings.elasticsearch_client_kwargs(), request_timeout=10, max_retries=1
    )
    metrics = _Metrics()
    app = FastAPI(
        title="Trending arXiv",
        summary="arXiv papers ranked by the social posts that link them.",
        version="0.1.0",
        docs_url=None,  # served by web/pages.py from local files (offline)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.es = client

    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = _route_label(request)
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(ApiProblem)
    async def _problem(_: Request, error: ApiProblem) -> JSONResponse:
        if error.status == 503:
            metrics.es_errors.inc()
            log.warning("503: %s", error.message)
        return JSONResponse(_error_body(error.message), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        detail = jsonable_encoder(
            [
                {"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")}
                for e in error.errors()
            ]
        )
        return JSONResponse(_error_body(_validation_message(error), detail=detail), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            _error_body(str(error.detail)), status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(_error_body(f"internal error: {type(error).__name__}"), 500)

    def ranking(params: RankingParams, user: str | None) -> dict[str, Any]:
        _check_page(params.limit, params.offset)
        query = _es_call(settings, lambda: params.query(user))
        page = _es_call(settings, lambda: queries.trending_page(client, settings, query))
        rows = page.papers
        return {
            "window": params.window,
            "sort": params.sort,
            "category": params.category,
            "source": params.source,
            "user": query.user,
            # The moment every window ends at: the one asked for, else the stream's time.
            "as_of": to_utc_iso(page.as_of) if page.as_of else None,
            "half_life_hours": params.half_life_hours,
            "limit": params.limit,
            "offset": params.offset,
            "papers": rows,
        }

    @app.get("/api/trending", tags=["papers"])
    def trending(params: Annotated[TrendingParams, Query()]) -> dict[str, Any]:
        """Papers ranked by posts (or accounts, trend score, date, field) in a window.

        `field`: distinct accounts as a percentile of the paper's field (see the page's
        "How ranking works"); `half_life_hours` recomputes the trend score (sort=score).
        """
        return ranking(params, params.user)

    @app.get("/api/users/{user}/trending", tags=["papers"])
    def user_trending(user: str, params: Annotated[RankingParams, Query()]) -> dict[str, Any]:
        """Papers ranked over the posts of the accounts `user` follows."""
        if not 1 <= len(user) <= MAX_USER_NAME:
            raise ApiProblem(422, f"user must be 1 to {MAX_USER_NAME} characters")
        # One request: the ranking reads the follow list itself (404 when there is none).
        return ranking(params, user)

    @app.get("/api/search", tags=["papers"])
    def search(params: Annotated[SearchParams, Query()]) -> dict[str, Any]:
        """Full-text search over titles, abstracts and authors of counted papers."""
        _check_page(params.limit, params.offset)
        query = _es_call(settings, params.query)
        rows = _es_call(settings, lambda: papers.search_papers(client, settings, query))
        return {
            "q": params.q,
            "window": params.window,
            "sort": params.sort,
            "category": params.category,
            "source": params.source,
            "user": params.user,
            "limit": params.limit,
            "offset": params.offset,
            "papers": rows,
        }

    @app.get("/api/papers/{arxiv_id:path}", tags=["papers"])
    def paper(
        arxiv_id: str,
        posts_limit: Annotated[int, Query(ge=1, le=200)] = 50,
        as_of: AsOf = None,
    ) -> dict[str, Any]:
        """One paper: metadata, counts, its posts (newest first) and an hourly histogram."""
        canonical = paper_id(arxiv_id)  # an ID in any form or a paper URL, as `paper`
        if canonical is None:
            raise ApiProblem(422, f"{arxiv_id!r} is not an arXiv identifier")
        moment = _parse_as_of(as_of)
        detail = _es_call(
            settings,
            lambda: papers.paper_detail(client, settings, canonical, posts_limit, moment),
        )
        if detail is None:
            raise ApiProblem(404, f"paper {canonical} is not known here")
        return dict(detail)

    @app.get("/api/sparklines", tags=["papers"])
    def sparklines(
        ids: Annotated[
            str, Query(min_length=1, max_length=4000, description="Comma-separated arXiv ids.")
        ],
        hours: Annotated[int, Query(ge=1, le=MAX_HOURS)] = 168,
        as_of: AsOf = None,
        user: Annotated[
            str | None, Query(max_length=100, description="Only posts of accounts user follows.")
        ] = None,
    ) -> dict[str, Any]:
        """Hourly mention counts of several papers (ending at as_of or each last mention)."""
        wanted: list[str] = []
        for raw in ids.split(","):
            if not raw.strip():
                continue
            canonical = paper_id(raw)
            if canonical is None:
                raise ApiProblem(422, f"{raw.strip()!r} is not an arXiv identifier")
            wanted.append(canonical)
        if len(wanted) > MAX_IDS:
            raise ApiProblem(422, f"at most {MAX_IDS} ids per request, got {len(wanted)}")
        moment = _parse_as_of(as_of)
        series = _es_call(settings, lambda: hourly_histograms(
            client, settings, wanted, hours, moment, user or None
        ))  # fmt: skip
        return {"hours": hours, "series": series}

    @app.get("/api/categories", tags=["papers"])
    def categories() -> dict[str, Any]:
        """Categories of the counted papers, most frequent first (for the filter)."""
        return {"categories": _es_call(settings, lambda: category_counts(client, settings))}

    @app.get("/healthz", tags=["operations"])
    def healthz() -> JSONResponse:
        """200 when Elasticsearch answers, 503 otherwise; with the pipeline's status."""
        try:
            health = client.cluster.health(timeout="2s")
        except (ApiError, TransportError) as error:
            return JSONResponse(
                {
                    "status": "unavailable",
                    "elasticsearch": settings.elasticsearch_url_redacted,
                    "error": f"Elasticsearch is not healthy: {error}",
                },
                status_code=503,
            )
        status = str(health.get("status"))
        ok = status in ("green", "yellow")
        from trending_arxiv.devstack.status import gather_status

        return JSONResponse(
            {
                "status": "ok" if ok else "degraded",
                "elasticsearch_status": status,
                "namespace": settings.namespace,
                # What `trending-arxiv status --json` prints: processes, lag, last event.
                "pipeline": gather_status(settings, client),
            },
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["operations"], include_in_schema=True)
    def prometheus_metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    from trending_arxiv.web.live import add_stream_route

    add_stream_route(app, settings, client)

    @app.get("/api/{rest:path}", include_in_schema=False)
    def unknown_api(rest: str) -> None:
        raise HTTPException(404, f"no API endpoint /api/{rest}")

    from trending_arxiv.web.feeds import add_feed_routes  # it imports this module

    add_feed_routes(app, settings, client)
    add_pages(app)  # /docs and /papers/<id>
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="page")
    return app
