"""Server-sent events for the page: `/api/stream` pushes a view's ranking as it is counted.

Each connection polls Elasticsearch for its view (the same query as `/api/trending`)
every `interval` seconds and sends an event only when the ranking or a count changed:

- `ranking`: `{"papers": [...], "changes": {arxiv_id: new posts}, "new_posts": {arxiv_id:
  [newest posts]}}` — the view's papers in their new order, how many posts each gained
  since the last event and the newest of those posts;
- `problem`: `{"error": message}` while Elasticsearch does not answer (the stream stays).

The first event is a `ranking` with no changes (the baseline). A stream ends by itself
after `MAX_STREAM_SECONDS` (EventSource reconnects), so no connection pins a server that
is shutting down.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from trending_arxiv.core.vocabulary import MAX_USER_NAME, Sort, Source, Window
from trending_arxiv.search import follows, queries
from trending_arxiv.settings import CommonSettings
from trending_arxiv.web.api import Category, _es_call

MAX_STREAM_SECONDS = 300.0
KEEP_ALIVE_SECONDS = 15.0
NEW_POSTS_PER_PAPER = 3


def sse(event: str, data: Any) -> str:
    """One server-sent event (JSON data on one line: JSON never contains a raw newline)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def count_changes(
    before: dict[str, int] | None, rows: list[dict[str, Any]]
) -> tuple[bool, dict[str, int]]:
    """Whether the view changed (order or counts) since `before`, and the posts each gained."""
    now = {str(row["arxiv_id"]): int(row.get("posts") or 0) for row in rows}
    if before is None:
        return True, {}
    gained = {paper: posts - before.get(paper, 0) for paper, posts in now.items()}
    gained = {paper: n for paper, n in gained.items() if n > 0 and paper in before}
    return (list(now) != list(before) or now != before), gained


def newest_posts(
    es: Elasticsearch, settings: CommonSettings, papers: list[str], per_paper: int
) -> dict[str, list[dict[str, Any]]]:
    """The newest `per_paper` mentions (by event time) of each paper."""
    if not papers:
        return {}
    body = es.search(
        index=settings.indices.mentions,
        size=0,
        query={"terms": {"arxiv_id": papers}},
        aggs={
            "papers": {
                "terms": {"field": "arxiv_id", "size": len(papers)},
                "aggs": {
                    "newest": {
                        "top_hits": {
                            "size": per_paper,
                            "sort": [{"@timestamp": "desc"}],
                            "_source": [
                                "@timestamp", "source", "author_handle", "text", "url", "kind",
                            ],
                        }
                    }
                },
            }
        },
    )  # fmt: skip
    found: dict[str, list[dict[str, Any]]] = {}
    for bucket in body["aggregations"]["papers"]["buckets"]:
        found[bucket["key"]] = [hit["_source"] for hit in bucket["newest"]["hits"]["hits"]]
    return found


def add_stream_route(app: FastAPI, settings: CommonSettings, client: Elasticsearch) -> None:
    """Register `GET /api/stream` on `app` (errors go through the app's ApiProblem handler)."""

    @app.get("/api/stream", tags=["papers"], response_class=StreamingResponse)
    async def stream(
        request: Request,
        window: Window = "24h",
        sort: Sort = "posts",
        category: Category = None,
        source: Source | None = None,
        user: Annotated[str | None, Query(max_length=MAX_USER_NAME)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        interval: Annotated[
            float, Query(ge=0.2, le=60, description="Seconds between polls.")
        ] = 1.0,
    ) -> StreamingResponse:
        """Server-sent events: the view's ranking whenever it changes (see the module doc)."""
        query = _es_call(settings, lambda: queries.TrendingQuery(
            window=window, sort=sort, limit=limit, offset=0, category=category,
            source=source, user=user or None,
        ))  # fmt: skip
        return StreamingResponse(
            _events(request, client, settings, query, interval),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


async def _events(
    request: Request,
    client: Elasticsearch,
    settings: CommonSettings,
    query: queries.TrendingQuery,
    interval: float,
) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    before: dict[str, int] | None = None
    ends = time.monotonic() + MAX_STREAM_SECONDS
    quiet_since = time.monotonic()
    while time.monotonic() < ends and not await request.is_disconnected():
        try:
            rows = await run_in_threadpool(queries.top_papers, client, settings, query)
            changed, gained = count_changes(before, rows)
            fresh = (
                await run_in_threadpool(
                    newest_posts, client, settings, list(gained), NEW_POSTS_PER_PAPER
                )
                if gained
                else {}
            )
        except (follows.UnknownUserError, ValueError) as error:
            yield sse("problem", {"error": str(error)})  # will not change: end the stream
            return
        except (ApiError, TransportError) as error:
            yield sse("problem", {"error": f"Elasticsearch: {error}"})
            await asyncio.sleep(max(interval, 2.0))
            continue
        if changed:
            yield sse("ranking", {"papers": rows, "changes": gained, "new_posts": fresh})
            before = {str(row["arxiv_id"]): int(row.get("posts") or 0) for row in rows}
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEP_ALIVE_SECONDS:
            yield ": keep-alive\n\n"  # a comment: proxies keep the connection open
            quiet_since = time.monotonic()
        await asyncio.sleep(interval)
