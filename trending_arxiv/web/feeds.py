"""Feeds on the API's server: Atom/RSS of any view of the page, and a Bluesky feed generator.

* `GET /feeds/trending.atom` and `/feeds/trending.rss` take `/api/trending`'s parameters
  (plus `q`, as the page does: a search) and rank with the same query functions; they
  carry an ETag and Last-Modified and answer 304 to a reader that has the feed already.
* `GET /xrpc/app.bsky.feed.describeFeedGenerator`, `/xrpc/app.bsky.feed.getFeedSkeleton`
  and `/.well-known/did.json`: the AT Protocol feed generator. Its errors are XRPC
  errors (`{"error": "UnknownFeed", "message": ...}`), 400 for anything the caller sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

from elasticsearch import Elasticsearch
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from trending_arxiv.core import feeds as atom
from trending_arxiv.core.skyfeed import (
    GENERATOR_COLLECTION,
    SkeletonCursor,
    describe_response,
    did_document,
    parse_record_uri,
    skeleton_response,
    xrpc_error,
)
from trending_arxiv.core.vocabulary import Sort, Source, Window
from trending_arxiv.search import follows, papers, queries
from trending_arxiv.search.skyfeed import feed_skeleton
from trending_arxiv.settings import CommonSettings
from trending_arxiv.web.api import ApiProblem, AsOf, Category, _es_call, _parse_as_of
from trending_arxiv.web.feed_settings import FeedSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_FEED_LIMIT = 100
DEFAULT_SKELETON_LIMIT = 50  # the lexicon's default
FeedLimit = Annotated[
    int, Query(ge=1, le=MAX_FEED_LIMIT, description=f"Entries, 1..{MAX_FEED_LIMIT}.")
]
# Readers poll; a minute is short next to how fast a ranking changes.
CACHE_CONTROL = "public, max-age=60"


class XrpcProblem(Exception):
    """An XRPC error: HTTP status, error name and message."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message


#: Every sort of /api/search and /api/trending (`field` only without q).
FeedSort = Literal["relevance", Sort]


def add_feed_routes(app: FastAPI, settings: CommonSettings, es: Elasticsearch) -> None:
    """Register the feed routes on `app` (before the page's catch-all mount)."""
    feed_settings = FeedSettings.from_common(settings)
    app.state.feed_settings = feed_settings

    def rows_of_view(
        window: str, sort: str, category: str | None, q: str | None, user: str | None,
        source: str | None, moment: datetime | None, limit: int,
    ) -> list[dict[str, Any]]:  # fmt: skip
        if q is not None:
            if user or moment:
                raise ApiProblem(422, "q (a search) cannot be combined with user or as_of")
            if sort == "field":
                raise ApiProblem(422, "sort=field ranks a view, not a search (no q)")
            search = _es_call(settings, lambda: papers.SearchQuery(
                text=q, window=window, sort=sort, limit=limit, category=category,  # type: ignore[arg-type]
                source=source,
            ))  # fmt: skip
            return _es_call(settings, lambda: papers.search_papers(es, settings, search))
        if sort == "relevance":
            raise ApiProblem(422, "sort=relevance needs q (a search)")
        query = _es_call(settings, lambda: queries.TrendingQuery(
            window=window, sort=sort, limit=limit, category=category,  # type: ignore[arg-type]
            source=source, as_of=moment, user=user,
        ))  # fmt: skip
        return _es_call(settings, lambda: queries.top_papers(es, settings, query))

    def feed_response(request: Request, kind: str, **view: Any) -> Response:
        if view["q"] is not None and not view["q"].strip():
            raise ApiProblem(422, "q must contain some text")
        moment = _parse_as_of(view.pop("as_of"))
        # The defaults of /api/trending, or of /api/search with q.
        view["window"] = view["window"] or ("all" if view["q"] else "24h")
        sort = view["sort"] or ("relevance" if view["q"] else "posts")
        view["sort"] = sort
        view["user"] = view["user"] or None
        rows = rows_of_view(moment=moment, **view)
        base = feed_settings.feeds_public_url or str(request.base_url).rstrip("/")
        entries = [atom.feed_entry(row, base, moment, atom.EPOCH) for row in rows]
        updated = atom.feed_updated(entries, moment)
        params = {k: v for k, v in view.items() if v not in (None, "")}
        if moment is not None:
            params["as_of"] = atom.atom_date(moment)
        page_params = {k: v for k, v in params.items() if k != "limit"}
        info = atom.FeedInfo(
            title=atom.feed_title(view["window"], sort, view["category"], view["q"],
                                  view["user"], view["source"], moment),
            self_url=f"{base}/feeds/trending.{kind}?{urlencode(params)}",
            page_url=f"{base}/?{urlencode(page_params)}",
            updated=updated,
        )  # fmt: skip
        if kind == "atom":
            body, media_type = atom.render_atom(info, entries), atom.ATOM_TYPE
        else:
            body, media_type = atom.render_rss(info, entries), atom.RSS_TYPE
        etag = atom.entity_tag(body)
        headers = {
            "ETag": etag,
            "Last-Modified": atom.http_date(updated),
            "Cache-Control": CACHE_CONTROL,
        }
        if atom.is_not_modified(
            etag,
            updated,
            request.headers.get("if-none-match"),
            request.headers.get("if-modified-since"),
        ):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=f"{media_type}; charset=utf-8", headers=headers)

    def feed_route(kind: str, name: str) -> Callable[..., Response]:
        def route(
            request: Request,
            window: Annotated[
                Window | None, Query(description="Default: 24h, or all with q (as the API).")
            ] = None,
            sort: FeedSort | None = None,
            category: Category = None,
            q: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
            user: Annotated[str | None, Query(max_length=100)] = None,
            source: Source | None = None,
            as_of: AsOf = None,
            limit: FeedLimit = 20,
        ) -> Response:
            view = {"window": window, "sort": sort, "category": category, "q": q, "user": user,
                    "source": source, "as_of": as_of, "limit": limit}  # fmt: skip
            return feed_response(request, kind, **view)

        route.__name__ = f"{kind}_feed"
        route.__doc__ = (
            f"The papers of a view as {name} feed (the parameters of /api/trending, or q)."
        )
        return route

    for kind, name in (("atom", "an Atom"), ("rss", "an RSS 2.0")):
        endpoint, path = feed_route(kind, name), f"/feeds/trending.{kind}"
        app.add_api_route(path, endpoint, methods=["GET"], tags=["feeds"], response_class=Response)
        # HEAD too (some readers ask it before a GET); one operation each in the docs.
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False,
                          response_class=Response)  # fmt: skip

    # -- the Bluesky feed generator --------------------------------------------------------
    def xrpc(call: Callable[[], T]) -> T:
        """Run a query; anything but a well-formed answer becomes an XRPC error."""
        try:
            return _es_call(settings, call)
        except ApiProblem as problem:
            if problem.status < 500:
                raise XrpcProblem(400, "InvalidRequest", problem.message) from problem
            raise XrpcProblem(503, "UpstreamFailure", problem.message) from problem

    @app.exception_handler(XrpcProblem)
    async def _xrpc_problem(_: Request, problem: XrpcProblem) -> JSONResponse:
        if problem.status >= 500:
            log.warning("xrpc %s: %s", problem.name, problem.message)
        return JSONResponse(xrpc_error(problem.name, problem.message), problem.status)

    @app.get("/.well-known/did.json", tags=["bluesky feed"])
    def did_json() -> dict[str, Any]:
        """The generator's DID document (did:web of the configured host)."""
        return did_document(feed_settings.service_did, feed_settings.service_endpoint)

    @app.get("/xrpc/app.bsky.feed.describeFeedGenerator", tags=["bluesky feed"])
    def describe_feed_generator() -> dict[str, Any]:
        """The generator's DID and the at:// URIs of its feeds."""
        return describe_response(
            feed_settings.service_did, [feed_settings.feed_uri(f) for f in feed_settings.feeds]
        )

    @app.get("/xrpc/app.bsky.feed.getFeedSkeleton", tags=["bluesky feed"])
    def get_feed_skeleton(
        feed: str | None = None, limit: str | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """One page of a feed: a post per trending paper, in ranking order, and a cursor."""
        # Parameters are read by hand: every malformed one is an XRPC 400, never a 422.
        if not feed:
            raise XrpcProblem(400, "InvalidRequest", "feed (an at:// URI) is required")
        try:
            uri = parse_record_uri(feed)
        except ValueError as error:
            raise XrpcProblem(400, "InvalidRequest", str(error)) from error
        definition = feed_settings.feed_named(uri.rkey)
        if (
            uri.authority != feed_settings.publisher_did
            or uri.collection != GENERATOR_COLLECTION
            or definition is None
        ):
            raise XrpcProblem(400, "UnknownFeed", f"this generator has no feed {feed}")
        size = DEFAULT_SKELETON_LIMIT
        if limit is not None:
            if not limit.isdigit() or not 1 <= int(limit) <= MAX_FEED_LIMIT:
                raise XrpcProblem(
                    400, "InvalidRequest", f"limit must be 1..{MAX_FEED_LIMIT}, got {limit!r}"
                )
            size = int(limit)
        position: SkeletonCursor | None = None
        if cursor:
            try:
                position = SkeletonCursor.decode(cursor)
            except ValueError as error:
                raise XrpcProblem(400, "InvalidRequest", f"bad cursor: {error}") from error

        def page() -> tuple[list[str], SkeletonCursor | None]:
            try:
                return feed_skeleton(es, settings, definition.view, size, position)
            except follows.UnknownUserError as error:
                # A configured feed of a user whose follow list is not stored (yet): empty.
                log.warning("feed %s: %s", definition.name, error)
                return [], None

        posts, following = xrpc(page)
        return skeleton_response(posts, following)
