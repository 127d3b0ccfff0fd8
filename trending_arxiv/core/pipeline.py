"""The pipeline's steps, shared by the stream's agents and `simulate()` (pure).

    line --parse_and_route--> (join key, routed record)  [ledger]--> mentions
    mentions --count_paper_at--> per paper: state, count update
    mentions --alert_log--> alerts, once the watermark has passed their moments

Each step's outcome depends only on its input, not on how the input is batched, so the
stream (batches of any size, any number of workers and partitions) and the in-order
reference give the same answers (`tests/unit/test_determinism.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from trending_arxiv.core import counting
from trending_arxiv.core.counting import PaperState
from trending_arxiv.core.ledger import join_key, needs_join, routed_post
from trending_arxiv.core.models import CountUpdate, Mention
from trending_arxiv.core.posts import NormalizedPost, parse_line
from trending_arxiv.core.stored import unpack_account_entry, unpack_summary

PaperStates = MutableMapping[str, PaperState]


def needs_ledger(post: NormalizedPost) -> bool:
    """Whether a parsed post can change any count (else it is dropped after parsing)."""
    return bool(post.arxiv_ids) or needs_join(post) or post.kind == "delete"


@dataclass
class ParsedLine:
    """What one raw line became: its posts and the routed records of those that count."""

    posts: int
    routed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: The newest event time of its posts (epoch s), None if none has one.
    newest: float | None = None

    @property
    def without_papers(self) -> int:
        return self.posts - len(self.routed)


def parse_and_route(line: bytes) -> ParsedLine:
    """Parse one raw line (raises `PostParseError`) into routed records keyed by join key."""
    posts = parse_line(line)
    parsed = ParsedLine(posts=len(posts))
    for post in posts:
        if post.created_at is not None:
            moment = post.created_at.timestamp()
            if parsed.newest is None or moment > parsed.newest:
                parsed.newest = moment
        if needs_ledger(post):
            parsed.routed.append((join_key(post), routed_post(post)))
    return parsed


def group_by_paper(mentions: Iterable[Mention]) -> dict[str, list[Mention]]:
    """Mentions per paper, each paper's in their order."""
    grouped: dict[str, list[Mention]] = {}
    for mention in mentions:
        grouped.setdefault(mention.arxiv_id, []).append(mention)
    return grouped


def count_paper(
    arxiv_id: str,
    state: PaperState | None,
    mentions: Iterable[Mention],
    accounts: counting.AccountStore,
    as_of: datetime,
    half_life_hours: float = counting.DEFAULT_HALF_LIFE_HOURS,
) -> tuple[PaperState, CountUpdate]:
    """Apply one paper's mentions to its state (a new one if None) and count it at `as_of`."""
    if state is None:
        state = counting.new_paper_state()
    counting.apply_mentions(state, mentions, accounts)
    counting.prune(state, as_of)
    return state, counting.count_update(arxiv_id, state, as_of, half_life_hours)


# A paper summary notes here the mentions-topic position it has applied up to:
# [partition, offset, MARKER_TOPIC] of the last mentions record whose mentions of it it
# holds. A marker without the tag counts offsets of the topic the counting agent read
# before session 15 (its own copy of the mentions): it says nothing about this one's.
APPLIED_THROUGH = "through"  # (PaperState's key; mypy needs it spelled out where used)
MARKER_TOPIC = 1


def applied_through(state: PaperState | None, partition: int) -> int:
    """The mentions-topic offset on `partition` a paper summary has applied up to (-1 for
    none: a new summary, or one stored before summaries noted it)."""
    marker = state.get("through") if state else None
    if not marker or marker[0] != partition or marker[2:] != [MARKER_TOPIC]:
        return -1
    return int(marker[1])


class UnpackedSummaries(Mapping[str, PaperState | None]):
    """Paper summaries stored packed (`stored.pack_summary`, as the worker keeps them),
    read as dicts: each read unpacks a fresh copy (changing it changes nothing stored)."""

    def __init__(self, stored: Mapping[str, Any]) -> None:
        self.stored = stored

    def __getitem__(self, key: str) -> PaperState | None:
        return unpack_summary(self.stored[key])

    def get(self, key: str, default: Any = None) -> Any:
        stored = self.stored.get(key)
        return default if stored is None else unpack_summary(stored)

    def __iter__(self) -> Iterator[str]:
        return iter(self.stored)

    def __len__(self) -> int:
        return len(self.stored)


class StagedAccounts(MutableMapping[str, Any]):
    """Account entries read through to `saved`, written aside (`changes`) to be saved
    only once the paper summaries of the same batch are durable (`count_paper_at`).

    `saved` may hold them packed (`stored.pack_account_entry`, as the worker does):
    each read unpacks a fresh copy, so changes stay aside until they are saved."""

    def __init__(self, saved: MutableMapping[str, Any]) -> None:
        self.saved = saved
        self.changes: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self.changes:
            value = self.changes[key]
            if value is None:
                raise KeyError(key)
            return value
        return unpack_account_entry(self.saved[key])

    def get(self, key: str, default: Any = None) -> Any:
        # Mapping.get goes through a KeyError for every new key: slow on the hot path.
        if key in self.changes:
            value = self.changes[key]
            return default if value is None else value
        stored = self.saved.get(key)
        return default if stored is None else unpack_account_entry(stored)

    def __setitem__(self, key: str, value: Any) -> None:
        self.changes[key] = value

    def __delitem__(self, key: str) -> None:
        self[key]  # KeyError if missing
        self.changes[key] = None

    def __iter__(self) -> Iterator[str]:
        yield from (k for k, v in self.changes.items() if v is not None)
        yield from (k for k in self.saved if k not in self.changes)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def count_paper_at(
    arxiv_id: str,
    state: PaperState | None,
    positioned: Sequence[tuple[int, Mention]],
    partition: int,
    accounts: counting.AccountStore,
    as_of: datetime,
    half_life_hours: float = counting.DEFAULT_HALF_LIFE_HOURS,
) -> tuple[PaperState, CountUpdate]:
    """`count_paper` for mentions read at (`partition`, offset), exact on a replay.

    The summary and its account entries are two stores (two changelog writes), so a
    crash can keep one write and lose the other; the uncommitted mention records are
    then replayed. The stream saves a batch's summaries first and its account entries
    only once those are durable, so on a replay an account entry never holds a mention
    its summary lacks. Mentions at or before the summary's `applied_through` are in the
    summary already: they only bring the account entries up to date (an account entry
    alone is idempotent per post id: a known add, or a repeated removal, changes
    nothing). The others are counted as usual.
    """
    through = applied_through(state, partition)
    replayed = [mention for offset, mention in positioned if offset <= through]
    fresh = [mention for offset, mention in positioned if offset > through]
    if replayed:
        # An account entry's own changes do not depend on the summary: a scratch one.
        counting.apply_mentions(counting.new_paper_state(), replayed, accounts)
    state, update = count_paper(arxiv_id, state, fresh, accounts, as_of, half_life_hours)
    newest = max((offset for offset, _ in positioned), default=-1)
    if newest > through:
        state["through"] = [partition, newest, MARKER_TOPIC]
    return state, update


def final_counts(
    states: PaperStates, as_of: datetime, half_life_hours: float = counting.DEFAULT_HALF_LIFE_HOURS
) -> Iterator[CountUpdate]:
    """Every paper's count update at `as_of`."""
    for arxiv_id, state in states.items():
        if state:
            yield counting.count_update(arxiv_id, state, as_of, half_life_hours)
