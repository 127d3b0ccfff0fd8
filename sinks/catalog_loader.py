"""`trending-arxiv catalog load FILE`: bulk-load an arXiv metadata snapshot into the papers index.

Every record is keyed by the canonical arXiv ID. New papers are bulk `create`s; a paper
that already exists (409) is redone as a partial update with `doc_as_upsert`, so papers
that already have counts keep them (only metadata fields are written) and a reload of
the same file changes nothing but `enriched_at`. Enrichment looks in the
papers index before asking arXiv, so a loaded catalog saves those requests.

Speed (see bench/bench_search.py): the file is parsed on the calling thread while up to
`threads` bulk requests run on worker threads; Kaggle lines are decoded by msgspec into
the fields used (sinks.catalog); bulk bodies are NDJSON bytes built with orjson (the
client's per-action helpers cost more than parsing); requests are cut by count and by
bytes, the first ones small so Elasticsearch starts at once; and the papers index
refreshes rarely while the load runs.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from elasticsearch import ApiError, Elasticsearch, TransportError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from sinks.catalog import CatalogProblem, CatalogRecord, iter_catalog, open_catalog
from sinks.indices import ensure_indices
from trending_arxiv.core.documents import METADATA_FIELDS, metadata_document
from trending_arxiv.core.models import to_utc_iso
from trending_arxiv.settings import CommonSettings

MAX_PROBLEMS_KEPT = 20
#: A bulk request is also cut at this size: Elasticsearch advises a few MB per request.
CHUNK_BYTES = 8 * 1024 * 1024
#: Papers in the first bulk request of a load; the next ones double up to the chunk size.
FIRST_CHUNK = 500
#: While loading, the papers index refreshes this rarely (each refresh writes a small
#: segment that must be merged again). Not -1: a live trending page stays at most this
#: stale during a long load. The previous value comes back (and one refresh) at the end.
LOAD_REFRESH_INTERVAL = "30s"
#: Times a request (or its items) rejected with 429 is sent again, with 1, 2, 4 ... s pauses.
MAX_RETRIES = 5
#: Seconds one bulk request may take: a big one on a busy node is slower than a search.
BULK_TIMEOUT = 120
#: A catalog update that races with the stream sink's count update is simply retried.
RETRY_ON_CONFLICT = 3
# Only what the results are read for: a response per item is otherwise ~200 bytes of JSON.
_RESPONSE_FIELDS = "items.*.status,items.*.result,items.*.error.type,items.*.error.reason"

Op = Literal["create", "update"]


@dataclass
class LoadSummary:
    """What a catalog load did."""

    path: str
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    problems: int = 0
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def docs_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def note(self, message: str) -> None:
        if len(self.examples) < MAX_PROBLEMS_KEPT:
            self.examples.append(message)


@dataclass
class BulkChunk:
    """One bulk request: papers (ID and serialized document) that all get the same op."""

    op: Op
    ids: list[str] = field(default_factory=list)
    sources: list[bytes] = field(default_factory=list)
    size: int = 0

    def add(self, arxiv_id: str, source: bytes) -> None:
        self.ids.append(arxiv_id)
        self.sources.append(source)
        self.size += len(source) + len(arxiv_id) + 40

    def lines(self, positions: Iterable[int]) -> bytes:
        """The NDJSON body for the papers at `positions` (all of them on the first try)."""
        positions = list(positions)
        # One formatting per paper, looped in C (map/zip): this runs for every paper.
        keys = map(orjson.dumps, [self.ids[i] for i in positions])
        sources = [self.sources[i] for i in positions]
        if self.op == "create":
            return b"".join(map(_CREATE_LINES.__mod__, zip(keys, sources, strict=True)))
        # Partial update: metadata fields only, so the counts of a paper stay.
        return b"".join(map(_UPDATE_LINES.__mod__, zip(keys, sources, strict=True)))


_CREATE_LINES = b'{"create":{"_id":%s}}\n%s\n'
_UPDATE_LINES = (
    b'{"update":{"_id":%%s,"retry_on_conflict":%d}}\n{"doc":%%s,"doc_as_upsert":true}\n'
    % RETRY_ON_CONFLICT
)


def catalog_documents(
    records: Iterable[CatalogRecord | CatalogProblem], summary: LoadSummary, loaded_at: datetime
) -> Iterator[tuple[str, bytes]]:
    """(ID, serialized paper document) of usable records; problems are counted, not sent.

    The bytes are those of `orjson.dumps` of `metadata_document` plus the catalog's two
    fields (tests hold them equal).
    """
    stamp = to_utc_iso(loaded_at)
    loaded = b',"metadata_source":"catalog","enriched_at":%s}' % orjson.dumps(stamp)
    for record in records:
        if isinstance(record, CatalogProblem):
            summary.problems += 1
            summary.note(f"record {record.position}: {record.reason}")
            continue
        arxiv_id, metadata = record.arxiv_id, record.metadata
        try:
            if metadata and _METADATA_SET.issuperset(metadata) and all(metadata.values()):
                # metadata_document would copy it as it is: serialize it as it is and
                # write the fields it adds after it (cheaper than the copy, same bytes).
                key = orjson.dumps(arxiv_id)
                source = orjson.dumps(metadata)[:-1] + _ADDED % (key, key[1:], key[1:]) + loaded
            else:
                doc = metadata_document(arxiv_id, metadata)
                doc["metadata_source"] = "catalog"
                doc["enriched_at"] = stamp
                source = orjson.dumps(doc)
        except orjson.JSONEncodeError as error:  # a lone surrogate the lenient parser let in
            summary.problems += 1
            summary.note(f"{arxiv_id}: {error}")
            continue
        summary.records += 1
        yield arxiv_id, source


_METADATA_SET = frozenset(METADATA_FIELDS)
# What metadata_document adds after the metadata; %s: the ID as a JSON string, and that
# string without its opening quote (twice, for the two links).
_ADDED = (
    b',"arxiv_id":%s,"metadata_status":"found",'
    b'"abs_url":"https://arxiv.org/abs/%s,"pdf_url":"https://arxiv.org/pdf/%s'
)


def chunked(
    documents: Iterable[tuple[str, bytes]],
    op: Op,
    chunk_size: int,
    chunk_bytes: int,
    *,
    first_size: int | None = None,
) -> Iterator[BulkChunk]:
    """Bulk chunks of at most `chunk_size` papers and (about) `chunk_bytes` bytes.

    With `first_size`, the first chunk holds that many papers and each next one twice as
    many, up to `chunk_size`: Elasticsearch gets work after a few milliseconds of parsing
    instead of a whole chunk's.
    """
    size_now = min(first_size or chunk_size, chunk_size)
    chunk = BulkChunk(op)
    ids, sources, size = chunk.ids, chunk.sources, 0
    for arxiv_id, source in documents:  # BulkChunk.add, inlined: this runs for every paper
        ids.append(arxiv_id)
        sources.append(source)
        size += len(source) + len(arxiv_id) + 40
        if len(ids) >= size_now or size >= chunk_bytes:
            chunk.size = size
            yield chunk
            size_now = min(2 * size_now, chunk_size)
            chunk = BulkChunk(op)
            ids, sources, size = chunk.ids, chunk.sources, 0
    if ids:
        chunk.size = size
        yield chunk


def send_chunk(es: Elasticsearch, index: str, chunk: BulkChunk) -> list[dict[str, Any]]:
    """The item results of one bulk request, in chunk order; 429s are retried with backoff.

    A request that fails as a whole gives every one of its papers that error. The body is
    ready NDJSON bytes, so not `streaming_bulk`, which serializes action by action (the
    client's per-action helpers cost more than parsing: see the module doc).
    """
    results: list[dict[str, Any]] = [{}] * len(chunk.ids)
    pending = list(range(len(chunk.ids)))
    client = es.options(request_timeout=BULK_TIMEOUT)
    retrying = Retrying(
        retry=retry_if_exception_type(_Overloaded),
        stop=stop_after_attempt(MAX_RETRIES + 1),
        wait=wait_exponential(multiplier=1.0),  # 1, 2, 4 ... s
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            last = attempt.retry_state.attempt_number > MAX_RETRIES
            try:
                response = client.bulk(
                    index=index,
                    # Ready NDJSON bytes go through the client as they are.
                    operations=chunk.lines(pending),  # type: ignore[arg-type]
                    filter_path=_RESPONSE_FIELDS,
                )
            except ApiError as error:
                if error.status_code == 429 and not last:
                    raise _Overloaded from error
                return _fail_all(results, pending, error.status_code, error)
            except TransportError as error:
                return _fail_all(results, pending, None, error)
            pending = settle(results, pending, response["items"], last)
            if pending:
                raise _Overloaded
    return results


class _Overloaded(Exception):
    """Elasticsearch answered 429 for the request or some of its items: send them again."""


def settle(
    results: list[dict[str, Any]], pending: list[int], items: list[dict[str, Any]], last: bool
) -> list[int]:
    """File a bulk response's item results at their positions; return those to send again.

    An item Elasticsearch turned away as overloaded (429) is sent again, unless this
    was the last try.
    """
    retry = []
    for i, item in zip(pending, items, strict=True):
        result = next(iter(item.values()))
        if result.get("status") == 429 and not last:
            retry.append(i)
        else:
            results[i] = result
    return retry


def _fail_all(
    results: list[dict[str, Any]], pending: list[int], status: int | None, error: Exception
) -> list[dict[str, Any]]:
    failure = {"status": status, "error": {"type": type(error).__name__, "reason": str(error)}}
    for i in pending:
        results[i] = failure
    return results


class BulkPipeline:
    """Bulk requests on `threads` worker threads while the caller goes on parsing.

    Results are read in submission order on the caller's thread (the summary and the
    conflicts list need no lock). One chunk more than there are threads is queued, so a
    worker never waits for the parser.
    """

    def __init__(self, es: Elasticsearch, index: str, threads: int, summary: LoadSummary) -> None:
        self._es = es
        self._index = index
        self._threads = threads
        self.summary = summary
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="catalog-bulk")
        self._in_flight: deque[tuple[BulkChunk, Future[list[dict[str, Any]]]]] = deque()
        self.conflicts: list[tuple[str, bytes]] = []

    def submit(self, chunk: BulkChunk) -> None:
        future = self._pool.submit(send_chunk, self._es, self._index, chunk)
        self._in_flight.append((chunk, future))
        while len(self._in_flight) > self._threads:
            self._finish_oldest()

    def drain(self) -> None:
        while self._in_flight:
            self._finish_oldest()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _finish_oldest(self) -> None:
        chunk, future = self._in_flight.popleft()
        results = future.result()
        if chunk.op == "create":
            # Most items of a first load are created: counted in one pass, the rest
            # (conflicts, rejections) tallied one by one.
            created = [result.get("status") == 201 for result in results]
            self.summary.created += sum(created)
            if all(created):
                return
        else:
            created = [False] * len(results)
        for arxiv_id, source, result, done in zip(
            chunk.ids, chunk.sources, results, created, strict=True
        ):
            if not done:
                self._tally(chunk.op, arxiv_id, source, result)

    def _tally(self, op: Op, arxiv_id: str, source: bytes, result: dict[str, Any]) -> None:
        if tally(self.summary, op, arxiv_id, result) == "conflict":
            # The paper exists (maybe with counts): write its metadata as an update.
            self.conflicts.append((arxiv_id, source))


def tally(
    summary: LoadSummary, op: Op, arxiv_id: str, result: dict[str, Any]
) -> Literal["created", "conflict", "unchanged", "updated", "rejected"]:
    """Count one item result in `summary`; say what became of the paper."""
    status = result.get("status")
    if op == "create" and status == 201:
        summary.created += 1
        return "created"
    if op == "create" and status == 409:
        return "conflict"
    if op == "update" and status in (200, 201):
        if result.get("result") == "noop":
            summary.unchanged += 1
            return "unchanged"
        summary.updated += 1
        return "updated"
    summary.rejected += 1
    summary.note(f"{arxiv_id}: {result.get('error')}")
    return "rejected"


@contextmanager
def rare_refreshes(es: Elasticsearch, index: str) -> Iterator[None]:
    """Refresh `index` every LOAD_REFRESH_INTERVAL while loading; then as before, refreshed."""
    current = es.indices.get_settings(
        index=index, name="index.refresh_interval", flat_settings=True
    )
    found: dict[str, Any] = next(iter(current.values()), {})
    previous = found.get("settings", {}).get("index.refresh_interval")
    # An index that already doesn't refresh (a bulk load of the caller's own) stays so.
    change = previous != "-1"
    if change:
        es.indices.put_settings(
            index=index, settings={"index.refresh_interval": LOAD_REFRESH_INTERVAL}
        )
    try:
        yield
    finally:
        if change:  # None puts back the default
            es.indices.put_settings(index=index, settings={"index.refresh_interval": previous})
        es.indices.refresh(index=index)


def _progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[papers]:,} papers"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=console is None,
    )


def load_catalog(
    es: Elasticsearch,
    settings: CommonSettings,
    path: Path,
    *,
    console: Console | None = None,
    chunk_size: int = 5000,
    threads: int = 2,
    chunk_bytes: int = CHUNK_BYTES,
) -> LoadSummary:
    """Load a catalog file (Kaggle JSON lines, OAI-PMH XML, our JSON; gzip or not).

    `threads` bulk requests of at most `chunk_size` papers (and about `chunk_bytes`) run
    at once. Progress is drawn on `console` (none when it is None). Raises ValueError
    for a file that is no catalog and OSError when it can't be read.
    """
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    if not 1 <= threads <= 16:
        raise ValueError("threads must be between 1 and 16")
    if chunk_size < 1 or chunk_bytes < 1:
        raise ValueError("chunk_size and chunk_bytes must be positive")
    ensure_indices(es, settings)
    index = settings.indices.papers
    summary = LoadSummary(path=str(path))
    started = time.perf_counter()
    with rare_refreshes(es, index):
        pipeline = BulkPipeline(es, index, threads, summary)
        try:
            _load_file(pipeline, path, console, chunk_size, chunk_bytes)
        finally:  # before refreshes are back: no request of this load is still running
            pipeline.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _load_file(
    pipeline: BulkPipeline,
    path: Path,
    console: Console | None,
    chunk_size: int,
    chunk_bytes: int,
) -> None:
    """Parse `path` into bulk chunks for `pipeline`, with a progress bar on `console`."""
    summary = pipeline.summary
    with _progress(console) as progress, path.open("rb") as raw_file:
        size = path.stat().st_size
        task = progress.add_task(f"loading {path.name}", total=size, papers=0)
        # Progress follows the bytes read from disk, so it is right for gzip files too.
        raw = progress.wrap_file(raw_file, total=size, task_id=task)
        documents = catalog_documents(iter_catalog(open_catalog(raw)), summary, datetime.now(UTC))
        chunks = chunked(documents, "create", chunk_size, chunk_bytes, first_size=FIRST_CHUNK)
        for chunk in chunks:
            pipeline.submit(chunk)
            _submit_conflicts(pipeline, chunk_size, chunk_bytes, everything=False)
            progress.update(task, papers=summary.written)
        pipeline.drain()
        # Conflicts of the last chunks; updates never add conflicts, so this ends.
        _submit_conflicts(pipeline, chunk_size, chunk_bytes, everything=True)
        pipeline.drain()
        progress.update(task, papers=summary.written)


def _submit_conflicts(
    pipeline: BulkPipeline, chunk_size: int, chunk_bytes: int, *, everything: bool
) -> None:
    """Known papers (their `create` said 409) as update chunks: full ones, or all at the end.

    A last, partial chunk waits for more conflicts unless `everything`; the order of the
    conflicts is kept, so a paper listed twice ends with its later record.
    """
    if len(pipeline.conflicts) < chunk_size and not everything:
        return
    chunks = list(chunked(pipeline.conflicts, "update", chunk_size, chunk_bytes))
    pipeline.conflicts = []
    last = chunks[-1] if chunks else None
    if last is not None and not everything and len(last.ids) < chunk_size:
        chunks.pop()
        pipeline.conflicts = list(zip(last.ids, last.sources, strict=True))
    for chunk in chunks:
        pipeline.submit(chunk)
