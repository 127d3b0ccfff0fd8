"""Paper metadata from the arXiv API through the `arxiv` package, politely.

arXiv's terms: at most one request every 3 seconds, one connection at a time. One
`ArxivMetadataClient` owns one `arxiv.Client` (one HTTP session, its own 3 s spacing)
behind a lock, so every caller in the process shares the same budget. Many IDs go in
one `id_list` request. The `arxiv` client's own retries are immediate, so they are
turned off and replaced by exponential back-off (tenacity) on network errors and 5xx/429.

What arXiv answers for IDs it doesn't know varies with the API generation (recorded in
the fixtures): the current API drops them silently; the legacy one sent empty
placeholder entries, or a `totalResults` larger than the entries it sent; a malformed ID
gets HTTP 400 with an error feed. All of these end up as "not found" for exactly the IDs
concerned: a 400 on a batch is bisected until the offending ID is alone.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import arxiv
import requests
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from trending_arxiv.core.ids import canonicalize
from trending_arxiv.core.models import to_utc_iso

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://export.arxiv.org/api/query"
#: arXiv's terms of use: no more than one request every three seconds.
ARXIV_MIN_DELAY_SECONDS = 3.0
#: arXiv answers up to 2000 entries a page; long `id_list`s also make long URLs.
MAX_BATCH_SIZE = 400

_SPACE = re.compile(r"\s+")


class ArxivUnavailableError(RuntimeError):
    """arXiv could not be reached (or kept failing) after every retry; try later."""


@dataclass
class FetchResult:
    """Metadata per canonical ID, and the IDs arXiv doesn't know."""

    found: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_found: list[str] = field(default_factory=list)
    requests: int = 0


def _clean(text: str | None) -> str | None:
    """Collapse arXiv's hard line wrapping; empty strings become None."""
    if text is None:
        return None
    cleaned = _SPACE.sub(" ", text).strip()
    return cleaned or None


def _iso(moment: datetime | None) -> str | None:
    if moment is None or moment.year < 1900:  # arxiv.Result's "unset" is datetime.min
        return None
    return to_utc_iso(moment)


def result_to_metadata(result: arxiv.Result) -> tuple[str, dict[str, Any]] | None:
    """(canonical ID, metadata) of one API entry; None for error or placeholder entries."""
    arxiv_id = canonicalize(result.get_short_id())
    if arxiv_id is None:
        return None
    categories = [c for c in result.categories if c]
    primary = result.primary_category or (categories[0] if categories else None)
    metadata: dict[str, Any] = {
        "title": _clean(result.title),
        "authors": [a.name.strip() for a in result.authors if a.name and a.name.strip()],
        "abstract": _clean(result.summary),
        "categories": categories,
        "primary_category": primary,
        "published": _iso(result.published),
        "updated": _iso(result.updated),
        "doi": _clean(result.doi),
        "journal_ref": _clean(result.journal_ref),
        "comment": _clean(result.comment),
    }
    return arxiv_id, {k: v for k, v in metadata.items() if v not in (None, [], "")}


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """An HTTP adapter with a default timeout for every request."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def _is_transient(error: BaseException) -> bool:
    """Worth retrying later: network failures, rate limits and server errors."""
    if isinstance(error, arxiv.HTTPError):
        return error.status == 429 or error.status >= 500
    return isinstance(error, requests.exceptions.RequestException)


class ArxivMetadataClient:
    """Batched, rate-limited, retried `id_list` lookups; safe to share between threads."""

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        delay_seconds: float = ARXIV_MIN_DELAY_SECONDS,
        batch_size: int = 100,
        max_attempts: int = 4,
        backoff_seconds: float = 5.0,
        max_backoff_seconds: float = 120.0,
        timeout_seconds: float = 30.0,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
        if "export.arxiv.org" in api_url and delay_seconds < ARXIV_MIN_DELAY_SECONDS:
            raise ValueError("arXiv's terms allow at most one request every 3 seconds")
        self.api_url = api_url
        self.batch_size = batch_size
        self.max_attempts = max(1, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.requests_made = 0
        # Our back-off replaces the library's immediate retries (num_retries=0).
        self._client = arxiv.Client(
            page_size=batch_size, delay_seconds=delay_seconds, num_retries=0
        )
        # The library builds every request URL from this format string.
        self._client.query_url_format = api_url.rstrip("?") + "?{}"
        session = getattr(self._client, "_session", None)
        if isinstance(session, requests.Session):
            # The library passes no timeout; a hung connection must not stall enrichment.
            adapter = _TimeoutAdapter(timeout_seconds)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self._lock = threading.Lock()  # one connection at a time, process-wide

    def fetch(self, arxiv_ids: list[str]) -> FetchResult:
        """Metadata for canonical IDs, `batch_size` per request; raises ArxivUnavailableError."""
        result = FetchResult()
        wanted = list(dict.fromkeys(arxiv_ids))
        for start in range(0, len(wanted), self.batch_size):
            self._fetch_batch(wanted[start : start + self.batch_size], result)
        return result

    def _fetch_batch(self, ids: list[str], into: FetchResult) -> None:
        try:
            entries = self._request_with_backoff(ids, into)
        except arxiv.HTTPError as error:
            if error.status != 400:
                raise ArxivUnavailableError(f"arXiv answered HTTP {error.status}") from error
            # 400 = arXiv rejected an ID's format: bisect until the culprit is alone.
            if len(ids) == 1:
                log.info("arXiv rejects the id %s as malformed; recording not found", ids[0])
                into.not_found.append(ids[0])
                return
            middle = len(ids) // 2
            self._fetch_batch(ids[:middle], into)
            self._fetch_batch(ids[middle:], into)
            return
        for arxiv_id in ids:
            if arxiv_id in entries:
                into.found[arxiv_id] = entries[arxiv_id]
            else:
                into.not_found.append(arxiv_id)

    def _request_with_backoff(self, ids: list[str], into: FetchResult) -> dict[str, dict[str, Any]]:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=self.max_backoff_seconds),
            retry=retry_if_exception(_is_transient),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._request(ids, into)
        except RetryError as error:
            cause = error.last_attempt.exception()
            raise ArxivUnavailableError(
                f"arXiv unavailable after {self.max_attempts} attempts: {cause}"
            ) from cause
        raise ArxivUnavailableError("arXiv request was not attempted")  # pragma: no cover

    def _request(self, ids: list[str], into: FetchResult) -> dict[str, dict[str, Any]]:
        search = arxiv.Search(id_list=ids, max_results=len(ids))
        entries: dict[str, dict[str, Any]] = {}
        with self._lock:
            self.requests_made += 1
            into.requests += 1
            try:
                for item in self._client.results(search):
                    converted = result_to_metadata(item)
                    if converted is not None and converted[0] in ids:
                        entries[converted[0]] = converted[1]
            except arxiv.UnexpectedEmptyPageError:
                # Legacy quirk: totalResults counted IDs it never sent; the first page
                # had everything there is.
                log.debug("arXiv reported more results than it sent for %d ids", len(ids))
        return entries
