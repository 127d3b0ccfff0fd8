"""The Elasticsearch reads of the subscription service: a subscription's view.

Papers' metadata, the posts a query counts (source, follow list), a paper's rank in its
view, a digest's papers, the last digest sent, and a wait for the sink to catch up.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from sinks.alerts import alerts_index
from sinks.subscriptions import SubscriptionConfig
from trending_arxiv.core.models import WINDOW_SECONDS, CountUpdate, parse_utc, to_utc_iso
from trending_arxiv.core.subscriptions import PaperQuery
from trending_arxiv.settings import CommonSettings

log = logging.getLogger(__name__)
PAPER_FIELDS = ["arxiv_id", "title", "abstract", "authors", "categories", "primary_category",
                "abs_url", "pdf_url"]  # fmt: skip
DIGEST_CANDIDATES = 1000


def _category_filter(patterns: tuple[str, ...]) -> dict[str, Any]:
    should: list[dict[str, Any]] = []
    for pattern in patterns:
        if pattern.endswith(".*"):
            should.append({"prefix": {"categories": pattern[:-1]}})
        else:
            should.append({"term": {"categories": pattern}})
            if "." not in pattern:
                should.append({"prefix": {"categories": f"{pattern}."}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


class ViewReader:
    """Reads a subscription's view from Elasticsearch (see the module doc)."""

    def __init__(
        self,
        es: Elasticsearch,
        settings: CommonSettings,
        stop_event: threading.Event,
        sink_wait_seconds: float = 10.0,
    ) -> None:
        self.es = es
        self.settings = settings
        self.stop_event = stop_event
        self.sink_wait_seconds = sink_wait_seconds

    def papers(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        response = self.es.mget(
            index=self.settings.indices.papers, ids=ids, source_includes=PAPER_FIELDS
        )
        return {d["_id"]: d["_source"] for d in response["docs"] if d.get("found")}

    def post_filters(self, query: PaperQuery) -> list[dict[str, Any]]:
        filters: list[dict[str, Any]] = []
        if query.source:
            filters.append({"term": {"source": query.source}})
        if query.follows:
            lookup = {"index": self.settings.indices.follows, "id": query.follows,
                      "path": "accounts"}  # fmt: skip
            filters.append({"terms": {"account": lookup}})
        return filters

    def view_accounts(self, query: PaperQuery, arxiv_id: str, window: str, as_of: datetime) -> int:
        """Distinct accounts of the paper's posts that the query counts, in the window."""
        start = as_of - timedelta(seconds=WINDOW_SECONDS[window] or 0.0)
        span = {"range": {"@timestamp": {"gt": to_utc_iso(start), "lte": to_utc_iso(as_of)}}}
        filters = [{"term": {"arxiv_id": arxiv_id}}, span, *self.post_filters(query)]
        response = self.es.options(ignore_status=404).search(
            index=self.settings.indices.mentions, size=0, track_total_hits=False,
            query={"bool": {"filter": filters}},
            aggs={"accounts": {"cardinality": {"field": "account"}}},
        )  # fmt: skip
        return int(response.get("aggregations", {}).get("accounts", {}).get("value", 0))

    def wait_for_sink(self, update: CountUpdate) -> None:
        """Wait (bounded) until the mentions index holds the posts this update counted."""
        deadline = time.monotonic() + self.sink_wait_seconds
        query = {"bool": {"filter": [
            {"term": {"arxiv_id": update.arxiv_id}},
            {"range": {"@timestamp": {"lte": to_utc_iso(update.as_of)}}},
        ]}}  # fmt: skip
        while True:
            found = self.es.options(ignore_status=404).count(
                index=self.settings.indices.mentions, query=query
            )
            if int(found.get("count", 0)) >= update.posts["all"]:
                return
            if time.monotonic() >= deadline or self.stop_event.is_set():
                log.warning("mentions of %s not all indexed yet; evaluating what is there",
                            update.arxiv_id)  # fmt: skip
                return
            self.es.indices.refresh(index=self.settings.indices.mentions)
            self.stop_event.wait(0.2)

    def posts(
        self, query: PaperQuery, arxiv_id: str, after: datetime | None, until: datetime
    ) -> list[tuple[datetime, str]]:
        """(event time, account) of the paper's posts the query counts, in (after, until]."""
        span: dict[str, Any] = {"lte": to_utc_iso(until)}
        if after is not None:
            span["gt"] = to_utc_iso(after)
        filters = [{"term": {"arxiv_id": arxiv_id}}, {"range": {"@timestamp": span}},
                   *self.post_filters(query)]  # fmt: skip
        posts: list[tuple[datetime, str]] = []
        search_after: list[Any] | None = None
        while True:
            response = self.es.options(ignore_status=404).search(
                index=self.settings.indices.mentions, size=5000, track_total_hits=False,
                query={"bool": {"filter": filters}}, source_includes=["@timestamp", "account"],
                sort=[{"@timestamp": "asc"}, {"post_id": "asc"}], search_after=search_after,
            )  # fmt: skip
            hits = response.get("hits", {}).get("hits", [])
            posts += [(parse_utc(h["_source"]["@timestamp"]), h["_source"]["account"])
                      for h in hits]  # fmt: skip
            if len(hits) < 5000:
                return posts
            search_after = hits[-1]["sort"]

    def rank(self, sub: SubscriptionConfig, update: CountUpdate) -> int:
        """1 + the papers of the view with more distinct accounts in the trigger window."""
        assert sub.trigger is not None
        window = sub.trigger.window
        query = sub.query.core()
        filters: list[dict[str, Any]] = [
            {"range": {f"accounts.{window}": {"gt": update.accounts[window]}}},
            {"bool": {"must_not": [{"ids": {"values": [update.arxiv_id]}}]}},  # not itself
        ]
        if query.categories:
            filters.append(_category_filter(query.categories))
        if query.arxiv_ids:
            filters.append({"ids": {"values": list(query.arxiv_ids)}})
        if query.keywords:
            fields = ["title", "abstract"]
            phrases = [
                {"multi_match": {"query": k, "type": "phrase_prefix", "fields": fields}}
                for k in query.keywords
            ]
            filters.append({"bool": {"minimum_should_match": 1, "should": phrases}})
        if query.authors:
            names = [{"match_phrase": {"authors": a}} for a in query.authors]
            filters.append({"bool": {"minimum_should_match": 1, "should": names}})
        found = self.es.count(
            index=self.settings.indices.papers, query={"bool": {"filter": filters}}
        )
        return int(found["count"]) + 1

    def digest_rows(
        self, sub: SubscriptionConfig, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """The top N papers of the subscription's view by distinct accounts in (start, end]."""
        query = sub.query.core()
        filters: list[dict[str, Any]] = [
            {"range": {"@timestamp": {"gt": to_utc_iso(start), "lte": to_utc_iso(end)}}},
            *self.post_filters(query),
        ]
        if query.categories:
            filters.append(_category_filter(query.categories))
        if query.arxiv_ids:
            filters.append({"terms": {"arxiv_id": list(query.arxiv_ids)}})
        response = self.es.options(ignore_status=404).search(
            index=self.settings.indices.mentions, size=0, track_total_hits=False,
            query={"bool": {"filter": filters}},
            aggs={"papers": {
                "terms": {"field": "arxiv_id", "size": DIGEST_CANDIDATES,
                          "order": [{"accounts": "desc"}, {"_count": "desc"}, {"_key": "asc"}]},
                "aggs": {"accounts": {"cardinality": {"field": "account",
                                                      "precision_threshold": 40_000}}},
            }},
        )  # fmt: skip
        buckets = response.get("aggregations", {}).get("papers", {}).get("buckets", [])
        papers = self.papers([b["key"] for b in buckets])
        rows = []
        for bucket in buckets:
            paper = papers.get(bucket["key"])
            if not query.matches(paper, bucket["key"]):
                continue
            paper = paper or {}
            rows.append({
                "arxiv_id": bucket["key"], "title": paper.get("title"),
                "authors": paper.get("authors") or [], "categories": paper.get("categories") or [],
                "accounts": int(bucket["accounts"]["value"]), "posts": int(bucket["doc_count"]),
                "abs_url": paper.get("abs_url") or f"https://arxiv.org/abs/{bucket['key']}",
            })  # fmt: skip
            if len(rows) >= sub.delivery.top:
                break
        return rows

    def last_digest_end(self, name: str) -> datetime | None:
        response = self.es.options(ignore_status=404).search(
            index=alerts_index(self.settings), size=1, track_total_hits=False,
            query={"bool": {"filter": [{"term": {"subscription": name}},
                                       {"term": {"rule": "digest"}}]}},
            sort=[{"@timestamp": {"order": "desc"}}], source_includes=["@timestamp"],
        )  # fmt: skip
        hits = response.get("hits", {}).get("hits", [])
        return parse_utc(hits[0]["_source"]["@timestamp"]) if hits else None


def stream_time_from_index(es: Elasticsearch, settings: CommonSettings) -> datetime | None:
    """The newest `counts_as_of` of the papers index (the stream time the sink has seen)."""
    response = es.options(ignore_status=404).search(
        index=settings.indices.papers, size=0, track_total_hits=False,
        aggs={"newest": {"max": {"field": "counts_as_of"}}},
    )  # fmt: skip
    value = response.get("aggregations", {}).get("newest", {}).get("value_as_string")
    return parse_utc(value) if value else None
