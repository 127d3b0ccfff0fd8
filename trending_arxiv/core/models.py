"""Records that travel between the stages of the pipeline, as plain JSON.

Values on our topics are JSON objects (not Faust-specific records) so that any consumer
(the sink, Kibana ingest, a notebook) can read them without this package.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from trending_arxiv.core.vocabulary import WINDOWS as WINDOWS  # declared there, used here too

MentionOp = Literal["add", "remove"]


def to_utc_iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z`, the one format we write."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_utc(value: str) -> datetime:
    """Parse an ISO-8601 timestamp into an aware UTC datetime (naive means UTC)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Mention:
    """One post mentioning one paper; `op="remove"` withdraws it (a deleted post)."""

    post_id: str
    arxiv_id: str
    created_at: datetime
    source: str
    kind: str
    author_id: str | None = None
    author_handle: str | None = None
    text: str = ""
    ref_post_id: str | None = None
    op: MentionOp = "add"

    @property
    def document_id(self) -> str:
        """Deterministic id of this mention's Elasticsearch document."""
        return mention_document_id(self.post_id, self.arxiv_id)

    @property
    def account(self) -> str:
        """Who posted it, for distinct-account counts (source-qualified)."""
        return f"{self.source}:{self.author_id or self.author_handle or self.post_id}"

    def to_json_bytes(self) -> bytes:
        # Built by hand: `dataclasses.asdict` deep-copies and showed in worker profiles.
        return orjson.dumps(
            {**self.counting_fields(), "text": self.text, "ref_post_id": self.ref_post_id}
        )

    def counting_fields(self) -> dict[str, Any]:
        """What counting reads (no text): the form mentions take in mention batches."""
        return {
            "post_id": self.post_id,
            "arxiv_id": self.arxiv_id,
            "created_at": to_utc_iso(self.created_at),
            "source": self.source,
            "kind": self.kind,
            "author_id": self.author_id,
            "author_handle": self.author_handle,
            "op": self.op,
        }

    @classmethod
    def from_json(cls, raw: bytes | str | dict[str, Any]) -> Mention:
        data = raw if isinstance(raw, dict) else orjson.loads(raw)
        data = dict(data)
        data["created_at"] = parse_utc(data["created_at"])
        return cls(**data)


def mention_document_id(post_id: str, arxiv_id: str) -> str:
    return f"{post_id}|{arxiv_id}"


WINDOW_SECONDS: dict[str, float | None] = {
    "1h": 3600.0,
    "24h": 86400.0,
    "7d": 7 * 86400.0,
    "30d": 30 * 86400.0,
    "all": None,
}


@dataclass(frozen=True, slots=True)
class CountUpdate:
    """Every window's numbers for one paper, as of one moment of stream time."""

    arxiv_id: str
    as_of: datetime
    posts: dict[str, int]
    accounts: dict[str, int]
    trend_score: float
    velocity: float
    first_seen: datetime | None
    last_seen: datetime | None
    sources: dict[str, int] = field(default_factory=dict)
    #: log2 of the trend score referenced to the epoch: ranks papers by trend score at any
    #: moment without republishing them as time passes (`counting.trend_rank`).
    trend_rank: float | None = None

    def to_json_bytes(self) -> bytes:
        payload = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for key in ("as_of", "first_seen", "last_seen"):
            value = payload[key]
            payload[key] = to_utc_iso(value) if value is not None else None
        return orjson.dumps(payload)

    @classmethod
    def from_json(cls, raw: bytes | str | dict[str, Any]) -> CountUpdate:
        data = dict(raw if isinstance(raw, dict) else json.loads(raw))
        data["as_of"] = parse_utc(data["as_of"])
        for key in ("first_seen", "last_seen"):
            if data.get(key):
                data[key] = parse_utc(data[key])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Alert:
    """A paper crossed a threshold: one per paper, rule and window bucket."""

    alert_id: str
    arxiv_id: str
    rule: str
    reason: str
    triggered_at: datetime
    numbers: dict[str, float]

    def to_json_bytes(self) -> bytes:
        payload = asdict(self)
        payload["triggered_at"] = to_utc_iso(self.triggered_at)
        return json.dumps(payload, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str | dict[str, Any]) -> Alert:
        data = dict(raw if isinstance(raw, dict) else json.loads(raw))
        data["triggered_at"] = parse_utc(data["triggered_at"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input we could not use, with the reason, kept for inspection and replay."""

    stage: str
    reason: str
    raw: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    line: int | None = None

    def to_json_bytes(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode()

    @classmethod
    def from_raw_bytes(cls, stage: str, reason: str, raw: bytes, **where: Any) -> DeadLetter:
        # Keep undecodable bytes visible rather than dropping them: \\x escapes survive JSON.
        text = raw.decode("utf-8", errors="backslashreplace")
        if len(text) > 100_000:
            text = text[:100_000] + f"... [{len(text) - 100_000} more characters cut]"
        return cls(stage=stage, reason=reason, raw=text, **where)
