"""Records that travel between the stages of the pipeline, as plain JSON (msgspec Structs).

Values on our topics are JSON objects (not Faust-specific records) so that any consumer
(the sink, Kibana ingest, a notebook) can read them without this package.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import msgspec

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


class _CountedFields(msgspec.Struct, frozen=True):
    """A mention's fields that counting reads, first in its JSON."""

    post_id: str
    arxiv_id: str
    created_at: datetime
    source: str
    kind: str
    author_id: str | None = None
    author_handle: str | None = None
    op: MentionOp = "add"
    #: When it became true in event time, where that is not `created_at`: a removal's
    #: delete, a repost credited when its later subject came (`moment`). Unset is
    #: left out of the JSON, so every other mention is written as it always was.
    known_at: datetime | msgspec.UnsetType = msgspec.UNSET


class Mention(_CountedFields, frozen=True):
    """One post mentioning one paper; `op="remove"` withdraws it (a deleted post).

    The fields are in the order of the JSON it has always been written as (the counting
    fields first), so the bytes on the topics are unchanged.
    """

    text: str = ""
    ref_post_id: str | None = None

    def __post_init__(self) -> None:
        _force_utc(self, "created_at")
        if self.known_at is not msgspec.UNSET:
            _force_utc(self, "known_at")

    @property
    def moment(self) -> datetime:
        """When this mention became true in event time: what the alert rules order by."""
        return self.created_at if self.known_at is msgspec.UNSET else self.known_at

    @property
    def document_id(self) -> str:
        """Deterministic id of this mention's Elasticsearch document."""
        return mention_document_id(self.post_id, self.arxiv_id)

    @property
    def account(self) -> str:
        """Who posted it, for distinct-account counts (source-qualified)."""
        return f"{self.source}:{self.author_id or self.author_handle or self.post_id}"

    def to_json_bytes(self) -> bytes:
        return _encode(self)

    @classmethod
    def from_json(cls, raw: bytes | str | dict[str, Any]) -> Mention:
        return _decode(raw, cls)


class _CountedMention(_CountedFields, frozen=True):
    """A mention as counting decodes it: its text and reference are read (so a mention
    counts only where the sink can index it) but never kept."""

    text: msgspec.Raw = msgspec.Raw(b'""')
    ref_post_id: msgspec.Raw = msgspec.Raw(b"null")


_COUNTED = msgspec.json.Decoder(_CountedMention)


def mention_for_counting(raw: bytes) -> Mention:
    """A mention from its JSON without its text: counting never reads it, and the worker
    holds a batch of tens of thousands of mentions (bad input raises a ValueError)."""
    fields = _COUNTED.decode(raw)
    # What `Mention.from_json` would refuse in the skipped fields: the sink does.
    if memoryview(fields.text)[:1] != b'"':
        raise ValueError("Expected `str` - at `$.text`")
    reference = memoryview(fields.ref_post_id)
    if reference[:1] != b'"' and reference != b"null":
        raise ValueError("Expected `str | null` - at `$.ref_post_id`")
    return Mention(
        fields.post_id,
        fields.arxiv_id,
        fields.created_at,
        fields.source,
        fields.kind,
        fields.author_id,
        fields.author_handle,
        fields.op,
        fields.known_at,
    )


def mention_document_id(post_id: str, arxiv_id: str) -> str:
    return f"{post_id}|{arxiv_id}"


WINDOW_SECONDS: dict[str, float | None] = {
    "1h": 3600.0,
    "24h": 86400.0,
    "7d": 7 * 86400.0,
    "30d": 30 * 86400.0,
    "all": None,
}


class CountUpdate(msgspec.Struct, frozen=True):
    """Every window's numbers for one paper, as of one moment of stream time."""

    arxiv_id: str
    as_of: datetime
    posts: dict[str, int]
    accounts: dict[str, int]
    trend_score: float
    velocity: float
    first_seen: datetime | None
    last_seen: datetime | None
    sources: dict[str, int] = msgspec.field(default_factory=dict)
    #: log2 of the trend score referenced to the epoch: ranks papers by trend score at any
    #: moment without republishing them as time passes (`counting.trend_rank`).
    trend_rank: float | None = None

    def __post_init__(self) -> None:
        _force_utc(self, "as_of", "first_seen", "last_seen")

    def to_json_bytes(self) -> bytes:
        return _encode(self)

    @classmethod
    def from_json(cls, raw: bytes | str | dict[str, Any]) -> CountUpdate:
        return _decode(raw, cls)


class Alert(msgspec.Struct, frozen=True):
    """A paper crossed a threshold: one per paper, rule and window bucket."""

    alert_id: str
    arxiv_id: str
    rule: str
    reason: str
    triggered_at: datetime
    numbers: dict[str, int | float]

    def __post_init__(self) -> None:
        _force_utc(self, "triggered_at")

    def to_json_bytes(self) -> bytes:
        return _encode(self)

    @classmethod
    def from_json(cls, raw: bytes | str | dict[str, Any]) -> Alert:
        return _decode(raw, cls)


class DeadLetter(msgspec.Struct, frozen=True):
    """Input we could not use, with the reason, kept for inspection and replay."""

    stage: str
    reason: str
    raw: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    line: int | None = None

    def to_json_bytes(self) -> bytes:
        return _encode(self)

    @classmethod
    def from_raw_bytes(cls, stage: str, reason: str, raw: bytes, **where: Any) -> DeadLetter:
        # Keep undecodable bytes visible rather than dropping them: \\x escapes survive JSON.
        text = raw.decode("utf-8", errors="backslashreplace")
        if len(text) > 100_000:
            text = text[:100_000] + f"... [{len(text) - 100_000} more characters cut]"
        return cls(stage=stage, reason=reason, raw=text, **where)


# One encoder for every record: msgspec writes a UTC datetime as `to_utc_iso` does
# (`...Z`, microseconds when there are any), and `__post_init__` makes every datetime UTC.
_encode = msgspec.json.Encoder().encode
_Record = TypeVar("_Record", Mention, CountUpdate, Alert, DeadLetter)


def _decode(raw: bytes | str | dict[str, Any], kind: type[_Record]) -> _Record:
    """A record from its JSON (or the dict of it); bad input raises a ValueError."""
    if isinstance(raw, dict):
        return msgspec.convert(raw, kind)
    return msgspec.json.decode(raw, type=kind)


def _force_utc(record: msgspec.Struct, *names: str) -> None:
    """Aware UTC datetimes whatever was given (naive means UTC), as `parse_utc` reads them."""
    for name in names:
        moment = getattr(record, name)
        if moment is not None and moment.tzinfo is not UTC:
            utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
            msgspec.structs.force_setattr(record, name, utc)
