"""Paper metadata for the sink, without ever holding up the counts.

Design (why it never blocks counting): the sink calls `Enricher` (its `metadata_lookup`)
synchronously for papers it hasn't described yet. That call only looks in memory, in the
local catalog file and in the papers index (one real-time `mget`); it never waits for
arXiv. IDs it can't answer are left out of the answer ("unknown yet": the sink indexes
their counts now and asks again the next time they show up) and queued for a
background thread. That thread asks arXiv (batched, 3 s apart, with back-off, see
`sinks.arxiv_client`), writes the metadata as partial updates (`doc_as_upsert`, so counts
are never touched), adds the categories to the paper's mentions indexed before the
metadata arrived, and remembers the answer so the sink's next lookup gets it.

The papers index is the durable state: a paper with counts but no `metadata_status` has
not been looked up. The worker also scans for such papers (after a restart the queue is
gone) and for papers due a refresh, so `trending-arxiv enrich` (the same worker in the
foreground) can run instead of, or after, the sink's thread. A paper is asked about once;
the only repeats are a daily refresh while it is recent (published, or first seen when
arXiv didn't know it, within `enrich_refresh_days`), so an ID arXiv doesn't know is
asked about at most once a day for that many days, then never again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.helpers import bulk, scan

from sinks.arxiv_client import ArxivMetadataClient, ArxivUnavailableError
from sinks.catalog import bundled_seed_catalog_path, load_catalog_file
from sinks.enrich_rules import (
    LOOKUP_FIELDS,
    EnrichSettings,
    EnrichStats,
    Metadata,
    metadata_from_source,
    needs_lookup,
)
from trending_arxiv.core.documents import metadata_document
from trending_arxiv.core.models import to_utc_iso

log = logging.getLogger(__name__)


class Enricher:
    """The sink's `metadata_lookup` plus the background worker that asks arXiv."""

    def __init__(
        self,
        settings: EnrichSettings,
        es: Elasticsearch,
        client: ArxivMetadataClient | None = None,
        catalog: dict[str, dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.es = es
        self.client = client
        if client is None and settings.arxiv_enabled:
            self.client = ArxivMetadataClient(
                api_url=settings.arxiv_api_url,
                delay_seconds=settings.arxiv_delay_seconds,
                batch_size=settings.arxiv_batch_size,
                max_attempts=settings.arxiv_max_attempts,
                backoff_seconds=settings.arxiv_backoff_seconds,
                max_backoff_seconds=settings.arxiv_max_backoff_seconds,
                timeout_seconds=settings.arxiv_timeout_seconds,
            )
        self.catalog = catalog if catalog is not None else self._load_catalog()
        self.stats = EnrichStats()
        self.stop_event = threading.Event()
        self._cache: OrderedDict[str, Metadata] = OrderedDict()
        self._cache_lock = threading.Lock()
        # Papers the index had no metadata for -> when (`clock`) it was asked: the sink
        # meets a paper in batch after batch, and each `mget` of it was a real-time read
        # of a document the sink keeps updating (its counts), for an answer that comes
        # only once the background lookup has written it (and then from the cache).
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._queue: queue.Queue[str] = queue.Queue(maxsize=settings.enrich_queue_size)
        self._queued: set[str] = set()
        self._thread: threading.Thread | None = None
        self._backfill_again: dict[str, dict[str, Any]] = {}

    def _load_catalog(self) -> dict[str, dict[str, Any]]:
        path = (
            Path(self.settings.catalog_path)
            if self.settings.catalog_path
            else bundled_seed_catalog_path()
        )
        if not path.is_file():
            log.warning("catalog file %s not found; enriching without it", path)
            return {}
        return load_catalog_file(path)

    # -- the sink's hot path: memory, catalog, index; never arXiv ------------------------
    def __call__(self, arxiv_ids: list[str]) -> dict[str, Metadata]:
        """Known metadata for these IDs; unknown ones are queued and left out."""
        self.stats.lookups += len(arxiv_ids)
        answer: dict[str, Metadata] = {}
        missing: list[str] = []
        now = self.clock()
        recheck_after = now - self.settings.enrich_recheck_seconds
        with self._cache_lock:
            for arxiv_id in arxiv_ids:
                if arxiv_id in self._cache:
                    self._cache.move_to_end(arxiv_id)
                    answer[arxiv_id] = self._cache[arxiv_id]
                    self.stats.from_cache += 1
                elif arxiv_id in self.catalog:
                    answer[arxiv_id] = self.catalog[arxiv_id]
                    self.stats.from_catalog += 1
                elif self._unknown.get(arxiv_id, recheck_after) > recheck_after:
                    self.stats.recently_checked += 1
                else:
                    missing.append(arxiv_id)
        if missing:
            sources = self._papers(missing)
            unknown: list[str] = []
            for arxiv_id in missing:
                source = sources.get(arxiv_id)
                if source and source.get("metadata_status"):
                    metadata = metadata_from_source(source)
                    answer[arxiv_id] = metadata
                    self._remember(arxiv_id, metadata)
                    self.stats.from_index += 1
                else:
                    unknown.append(arxiv_id)
                    self._enqueue(arxiv_id)
            self._note_unknown(unknown, now)
        return answer

    def _note_unknown(self, arxiv_ids: list[str], checked_at: float) -> None:
        """Remember when these papers were found without metadata (bounded, oldest out)."""
        with self._cache_lock:
            for arxiv_id in arxiv_ids:
                self._put_newest(self._unknown, arxiv_id, checked_at)

    def _papers(self, arxiv_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Papers-index documents by ID, their `LOOKUP_FIELDS` (real-time `mget`, so fresh
        writes are seen)."""
        response = self.es.mget(
            index=self.settings.indices.papers, ids=arxiv_ids, source_includes=LOOKUP_FIELDS
        )
        return {doc["_id"]: doc["_source"] for doc in response["docs"] if doc.get("found")}

    def _remember(self, arxiv_id: str, metadata: Metadata) -> None:
        with self._cache_lock:
            self._unknown.pop(arxiv_id, None)
            self._put_newest(self._cache, arxiv_id, metadata)

    def _put_newest(self, entries: OrderedDict[str, Any], arxiv_id: str, value: Any) -> None:
        """Set an entry as the newest; the oldest go past `enrich_cache_size` (under the
        cache lock)."""
        entries[arxiv_id] = value
        entries.move_to_end(arxiv_id)
        while len(entries) > self.settings.enrich_cache_size:
            entries.popitem(last=False)

    def _enqueue(self, arxiv_id: str) -> None:
        if arxiv_id in self._queued:
            return
        try:
            self._queue.put_nowait(arxiv_id)
        except queue.Full:
            # The periodic scan finds it in the papers index later.
            self.stats.dropped += 1
            return
        self._queued.add(arxiv_id)
        self.stats.queued += 1

    # -- the worker ------------------------------------------------------------------------
    def _drain(self, limit: int) -> list[str]:
        ids: list[str] = []
        while len(ids) < limit:
            try:
                arxiv_id = self._queue.get_nowait()
            except queue.Empty:
                break
            self._queued.discard(arxiv_id)
            ids.append(arxiv_id)
        return ids

    def scan_due(self, now: datetime, limit: int) -> list[str]:
        """Papers never looked up, or due a refresh; most recently mentioned first."""
        refresh_before = to_utc_iso(now - timedelta(hours=self.settings.enrich_refresh_hours))
        recent_after = to_utc_iso(now - timedelta(days=self.settings.enrich_refresh_days))
        stale = {"range": {"enriched_at": {"lt": refresh_before}}}
        query = {
            "bool": {
                "should": [
                    {"bool": {"must_not": [{"exists": {"field": "metadata_status"}}]}},
                    {
                        "bool": {
                            "filter": [
                                {"term": {"metadata_status": "found"}},
                                stale,
                                {"range": {"published": {"gte": recent_after}}},
                            ]
                        }
                    },
                    {
                        "bool": {
                            "filter": [
                                {"term": {"metadata_status": "not_found"}},
                                stale,
                                {"range": {"first_seen": {"gte": recent_after}}},
                            ]
                        }
                    },
                ],
                "minimum_should_match": 1,
            }
        }
        response = self.es.search(
            index=self.settings.indices.papers,
            query=query,
            size=limit,
            sort=[{"last_seen": {"order": "desc", "missing": "_last", "unmapped_type": "date"}}],
            source=False,
            track_total_hits=False,
        )
        return [hit["_id"] for hit in response["hits"]["hits"]]

    def run_once(self, now: datetime | None = None) -> int:
        """One round: queued IDs (else the scan), looked up and written; returns how many."""
        now = now or datetime.now(UTC)
        if self._backfill_again:
            again, self._backfill_again = self._backfill_again, {}
            self.stats.mentions_backfilled += self.backfill_mentions(again)
        limit = self.settings.arxiv_batch_size
        ids = self._drain(limit)
        if len(ids) < limit:
            ids += [i for i in self.scan_due(now, limit) if i not in ids][: limit - len(ids)]
        if not ids:
            return 0
        sources = self._papers(ids)
        due = [
            i
            for i in ids
            if needs_lookup(
                sources.get(i),
                now,
                self.settings.enrich_refresh_days,
                self.settings.enrich_refresh_hours,
            )
        ]
        for arxiv_id in ids:
            if arxiv_id not in due and arxiv_id in sources:
                self._remember(arxiv_id, metadata_from_source(sources[arxiv_id]))
        if not due:
            return 0
        answers: dict[str, tuple[Metadata, str]] = {}
        for arxiv_id in due:
            if arxiv_id in self.catalog:
                answers[arxiv_id] = (self.catalog[arxiv_id], "catalog")
        to_fetch = [i for i in due if i not in answers]
        if to_fetch and self.client is not None:
            try:
                result = self.client.fetch(to_fetch)
            except ArxivUnavailableError as error:
                self.stats.arxiv_failures += 1
                log.warning("arXiv unavailable (%s); %d papers wait", error, len(to_fetch))
                for arxiv_id in to_fetch:
                    self._enqueue(arxiv_id)
                self._write(answers, now)
                raise
            finally:
                self.stats.arxiv_requests = self.client.requests_made
            for arxiv_id, metadata in result.found.items():
                answers[arxiv_id] = (metadata, "arxiv")
            for arxiv_id in result.not_found:
                known = sources.get(arxiv_id) or {}
                if known.get("metadata_status") == "found":
                    # A refresh that comes back empty must not erase what we know.
                    origin = str(known.get("metadata_source") or "arxiv")
                    answers[arxiv_id] = (metadata_from_source(known), origin)
                else:
                    answers[arxiv_id] = (None, "arxiv")
            self.stats.fetched_found += len(result.found)
            self.stats.fetched_not_found += len(result.not_found)
        self._write(answers, now)
        return len(answers)

    def _write(self, answers: dict[str, tuple[Metadata, str]], now: datetime) -> None:
        if not answers:
            return
        stamp = to_utc_iso(now)
        actions = []
        for arxiv_id, (metadata, origin) in answers.items():
            doc = metadata_document(arxiv_id, metadata)
            doc["metadata_source"] = origin
            doc["enriched_at"] = stamp
            actions.append(
                {
                    "_op_type": "update",
                    "_index": self.settings.indices.papers,
                    "_id": arxiv_id,
                    "doc": doc,
                    "doc_as_upsert": True,
                }
            )
        bulk(self.es, actions, max_retries=3, refresh=False)
        for arxiv_id, (metadata, _origin) in answers.items():
            self._remember(arxiv_id, metadata)
        found = {i: m for i, (m, _o) in answers.items() if m is not None}
        if found:
            self.stats.mentions_backfilled += self.backfill_mentions(found)
            # The sink may have built mentions of these papers before the cache knew them
            # and write them just after this pass: look once more in the next round.
            self._backfill_again.update(found)

    def backfill_mentions(self, metadata_by_id: dict[str, dict[str, Any]]) -> int:
        """Give the categories to mentions indexed before their paper's metadata arrived."""
        index = self.settings.indices.mentions
        if not self.es.indices.exists(index=index):
            return 0
        # Mentions written in the last second are not searchable until a refresh.
        self.es.indices.refresh(index=index)
        hits: Iterable[dict[str, Any]] = scan(
            self.es,
            index=index,
            query={
                "query": {
                    "bool": {
                        "filter": [{"terms": {"arxiv_id": sorted(metadata_by_id)}}],
                        "must_not": [{"exists": {"field": "categories"}}],
                    }
                }
            },
            _source=["arxiv_id"],
            size=1000,
        )
        actions = []
        for hit in hits:
            metadata = metadata_by_id[hit["_source"]["arxiv_id"]]
            actions.append(
                {
                    "_op_type": "update",
                    "_index": index,
                    "_id": hit["_id"],
                    "doc": {
                        "categories": metadata.get("categories") or [],
                        "primary_category": metadata.get("primary_category"),
                    },
                }
            )
        if not actions:
            return 0
        done, _errors = bulk(self.es, actions, max_retries=3, raise_on_error=False)
        return done

    def run(self, idle_exit_seconds: float | None = None) -> EnrichStats:
        """Work until stopped (or idle that long); arXiv or ES trouble only pauses it."""
        idle_since = datetime.now(UTC)
        while not self.stop_event.is_set():
            try:
                done = self.run_once()
            except ArxivUnavailableError:
                self.stop_event.wait(self.settings.arxiv_max_backoff_seconds)
                continue
            except (ApiError, TransportError) as error:
                log.warning("Elasticsearch unavailable for enrichment: %s", error)
                self.stop_event.wait(self.settings.enrich_poll_seconds)
                continue
            if done:
                idle_since = datetime.now(UTC)
                continue
            idle = (datetime.now(UTC) - idle_since).total_seconds()
            if idle_exit_seconds is not None and idle >= idle_exit_seconds:
                break
            # Queued IDs wake the loop early; otherwise rescan every poll interval.
            self._wait_for_work(self.settings.enrich_poll_seconds)
        return self.stats

    def _wait_for_work(self, seconds: float) -> None:
        deadline = datetime.now(UTC) + timedelta(seconds=seconds)
        while not self.stop_event.is_set() and self._queue.empty():
            left = (deadline - datetime.now(UTC)).total_seconds()
            if left <= 0:
                return
            self.stop_event.wait(min(0.2, left))

    def start(self) -> Enricher:
        """Run the worker in a daemon thread (for the sink)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name="enricher", daemon=True)
            self._thread.start()
        return self

    def request_stop(self) -> None:
        """Stop after the current lookup; signal-safe (use `stop` to also join the thread)."""
        self.stop_event.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Enricher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
