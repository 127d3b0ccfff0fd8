"""`trending-arxiv catalog load FILE`: bulk-load an arXiv metadata snapshot into the papers index.

Every record is keyed by the canonical arXiv ID. New papers are bulk `create`s; a paper
that already exists (409) is redone as a partial update with `doc_as_upsert`, so papers
that already have counts keep them (only metadata fields are written) and a reload of
the same file changes nothing but `enriched_at`. Enrichment looks in the
papers index before asking arXiv, so a loaded catalog saves those requests.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import parallel_bulk, streaming_bulk
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

from sinks.catalog import CatalogProblem, CatalogRecord, iter_catalog, open_catalog
from sinks.indices import ensure_indices
from trending_arxiv.documents import metadata_document
from trending_arxiv.models import to_utc_iso
from trending_arxiv.settings import CommonSettings

MAX_PROBLEMS_KEPT = 20


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


def catalog_actions(
    records: Iterable[CatalogRecord | CatalogProblem],
    index: str,
    summary: LoadSummary,
    loaded_at: datetime,
    in_flight: dict[str, deque[dict[str, Any]]],
) -> Iterator[dict[str, Any]]:
    """Bulk `create` actions for usable records; problems are counted, not sent.

    Each document is also kept in `in_flight` until its result is read, so a `create`
    that conflicts (the paper exists, maybe with counts) can be redone as an update.
    """
    stamp = to_utc_iso(loaded_at)
    for record in records:
        if isinstance(record, CatalogProblem):
            summary.problems += 1
            summary.note(f"record {record.position}: {record.reason}")
            continue
        summary.records += 1
        doc = metadata_document(record.arxiv_id, record.metadata)
        doc["metadata_source"] = "catalog"
        doc["enriched_at"] = stamp
        in_flight.setdefault(record.arxiv_id, deque()).append(doc)
        yield {"_op_type": "create", "_index": index, "_id": record.arxiv_id, "_source": doc}


def update_actions(index: str, docs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Partial updates that write metadata fields only: the counts of a paper stay."""
    return [
        {"_op_type": "update", "_index": index, "_id": arxiv_id, "doc": doc,
         "doc_as_upsert": True}
        for arxiv_id, doc in docs
    ]  # fmt: skip


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
    chunk_size: int = 2000,
    threads: int = 1,
) -> LoadSummary:
    """Load a catalog file (Kaggle JSON lines, OAI-PMH XML, our JSON; gzip or not).

    Progress is drawn on `console` (none when it is None). Raises ValueError for a file
    that is no catalog and OSError when it can't be read.
    """
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    if not 1 <= threads <= 16:
        raise ValueError("threads must be between 1 and 16")
    ensure_indices(es, settings)
    index = settings.indices.papers
    summary = LoadSummary(path=str(path))
    started = time.perf_counter()
    in_flight: dict[str, deque[dict[str, Any]]] = {}
    conflicts: list[tuple[str, dict[str, Any]]] = []

    def resolve_conflicts() -> None:
        # Known papers: `create` said 409, so write their metadata as partial updates.
        for ok, item in streaming_bulk(
            es, update_actions(index, conflicts), chunk_size=chunk_size,
            raise_on_error=False, raise_on_exception=False, max_retries=5, initial_backoff=1,
        ):  # fmt: skip
            result = item.get("update", {})
            if ok:
                if result.get("result") == "noop":
                    summary.unchanged += 1
                else:
                    summary.updated += 1
            else:
                summary.rejected += 1
                summary.note(f"{result.get('_id')}: {result.get('error')}")
        conflicts.clear()

    with _progress(console) as progress, path.open("rb") as raw_file:
        task = progress.add_task(f"loading {path.name}", total=path.stat().st_size, papers=0)
        # Progress follows the bytes read from disk, so it is right for gzip files too.
        raw = progress.wrap_file(raw_file, total=path.stat().st_size, task_id=task)
        actions = catalog_actions(
            iter_catalog(open_catalog(raw)), index, summary, datetime.now(UTC), in_flight
        )
        # New papers are plain `create`s (no read-modify-write in Elasticsearch, the fast
        # path of a first load); only the ones that exist become updates.
        results: Iterable[tuple[bool, Any]]
        if threads == 1:
            results = streaming_bulk(
                es, actions, chunk_size=chunk_size, raise_on_error=False,
                raise_on_exception=False, max_retries=5, initial_backoff=1,
            )  # fmt: skip
        else:
            results = parallel_bulk(
                es, actions, thread_count=threads, chunk_size=chunk_size,
                raise_on_error=False, raise_on_exception=False,
            )  # fmt: skip
        for done, (ok, item) in enumerate(results, start=1):
            result = item.get("create", item) if isinstance(item, dict) else {}
            arxiv_id = str(result.get("_id"))
            waiting = in_flight.get(arxiv_id)
            doc = waiting.popleft() if waiting else None
            if waiting is not None and not waiting:
                del in_flight[arxiv_id]
            if ok:
                summary.created += 1
            elif result.get("status") == 409 and doc is not None:
                conflicts.append((arxiv_id, doc))
                if len(conflicts) >= chunk_size:
                    resolve_conflicts()
            else:
                summary.rejected += 1
                summary.note(f"{arxiv_id}: {result.get('error')}")
            if done % 1000 == 0:
                progress.update(task, papers=done)
        if conflicts:
            resolve_conflicts()
        progress.update(task, papers=summary.written)
    es.indices.refresh(index=index)
    summary.seconds = time.perf_counter() - started
    return summary
