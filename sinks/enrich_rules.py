"""What enrichment reads and decides: its settings and counters, the fields a lookup
reads, and which papers are due a lookup (pure: no Elasticsearch or arXiv calls)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, model_validator

from sinks.arxiv_client import ARXIV_MIN_DELAY_SECONDS, DEFAULT_API_URL, MAX_BATCH_SIZE
from trending_arxiv.core.documents import METADATA_FIELDS
from trending_arxiv.core.models import parse_utc
from trending_arxiv.settings import SinkSettings

Metadata = dict[str, Any] | None

# What a lookup reads of a papers-index document: its metadata and lookup bookkeeping,
# not its counts (which the sink rewrites on every batch and a lookup never needs).
LOOKUP_FIELDS = (
    *METADATA_FIELDS,
    "metadata_status",
    "metadata_source",
    "enriched_at",
    "first_seen",
)


class EnrichSettings(SinkSettings):
    """Where arXiv is and how politely to ask it (env: `TRENDING_ARXIV_*`, `TRENDING_ENRICH_*`)."""

    arxiv_api_url: str = DEFAULT_API_URL
    arxiv_enabled: bool = Field(
        default=True, description="False: metadata only from the catalog and the papers index."
    )
    arxiv_delay_seconds: float = Field(default=ARXIV_MIN_DELAY_SECONDS, ge=0)
    arxiv_batch_size: int = Field(default=100, ge=1, le=MAX_BATCH_SIZE)
    arxiv_max_attempts: int = Field(default=4, ge=1)
    arxiv_backoff_seconds: float = Field(default=5.0, ge=0)
    arxiv_max_backoff_seconds: float = Field(default=120.0, ge=0)
    arxiv_timeout_seconds: float = Field(default=30.0, gt=0)
    enrich_refresh_days: float = Field(default=7.0, ge=0)
    enrich_refresh_hours: float = Field(default=24.0, gt=0)
    enrich_poll_seconds: float = Field(default=10.0, gt=0)
    enrich_cache_size: int = Field(default=100_000, ge=100)
    enrich_recheck_seconds: float = Field(
        default=60.0,
        ge=0,
        description=(
            "A paper the papers index had no metadata for is looked up there again only "
            "after this long (its arXiv lookup is queued meanwhile); 0: every batch."
        ),
    )
    enrich_queue_size: int = Field(default=100_000, ge=1)

    @model_validator(mode="after")
    def _polite_to_arxiv(self) -> EnrichSettings:
        if "export.arxiv.org" in self.arxiv_api_url and (
            self.arxiv_delay_seconds < ARXIV_MIN_DELAY_SECONDS
        ):
            raise ValueError("arXiv's terms allow at most one request every 3 seconds")
        return self


@dataclass
class EnrichStats:
    """Counters of one enricher (cumulative)."""

    lookups: int = 0
    from_cache: int = 0
    #: Unknown papers not looked up in the index again (checked `enrich_recheck_seconds` ago).
    recently_checked: int = 0
    from_catalog: int = 0
    from_index: int = 0
    queued: int = 0
    dropped: int = 0
    fetched_found: int = 0
    fetched_not_found: int = 0
    arxiv_requests: int = 0
    arxiv_failures: int = 0
    mentions_backfilled: int = 0


def metadata_from_source(source: dict[str, Any]) -> Metadata:
    """The metadata part of a papers-index document (None when arXiv didn't know it)."""
    if source.get("metadata_status") == "not_found":
        return None
    return {k: source[k] for k in METADATA_FIELDS if source.get(k) not in (None, "", [])}


def needs_lookup(
    source: dict[str, Any] | None,
    now: datetime,
    refresh_days: float,
    refresh_hours: float,
) -> bool:
    """Whether a paper (its papers-index document, None if absent) should be asked about.

    Never looked up: yes. Looked up: only while recent (published, or first seen when arXiv
    didn't know it, within `refresh_days`) and not in the last `refresh_hours`.
    """
    if not source or not source.get("metadata_status"):
        return True
    checked = source.get("enriched_at")
    if checked and parse_utc(checked) > now - timedelta(hours=refresh_hours):
        return False
    anchor_field = "published" if source["metadata_status"] == "found" else "first_seen"
    anchor = source.get(anchor_field)
    if not anchor:
        return False
    return parse_utc(anchor) >= now - timedelta(days=refresh_days)
