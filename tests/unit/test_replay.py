"""A worker killed between its two table writes replays its batch exactly (pure core).

The counting agent keeps two stores per paper: the summary (`papers`) and its account
entries (`paper_accounts`), saved as separate changelog writes. A crash can keep one
and lose the other, and then replays the mention batches it had not committed. `drive`
plays that protocol on the pure steps (`count_paper_at`, `StagedAccounts`): summaries
saved first (any subset of them may be durable at a crash), account entries only once
all of them are, offsets committed after both; crashes at random points reload the
durable stores and go back to the committed offsets. Every paper's counts must equal
`simulate()`'s.
"""

from __future__ import annotations

import functools
import json
import random
import zlib
from collections import deque
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_determinism import FUZZ_LINES, SEED_LINES
from trending_arxiv.core import counting, stored
from trending_arxiv.core.clock import StreamClock
from trending_arxiv.core.ledger import Ledger
from trending_arxiv.core.models import Mention
from trending_arxiv.core.pipeline import (
    APPLIED_THROUGH,
    MARKER_TOPIC,
    StagedAccounts,
    UnpackedSummaries,
    count_paper,
    count_paper_at,
    parse_and_route,
)
from trending_arxiv.core.posts import PostParseError
from trending_arxiv.core.simulate import SimulationResult, simulate

AS_OF = datetime(2026, 3, 1, 12, tzinfo=UTC)


def ledger_mentions(lines: list[bytes]) -> list[Mention]:
    """The mentions the ledger emits for `lines`, in `simulate()`'s order."""
    ledger, clock = Ledger({}, 3600.0), StreamClock()
    queue: deque[dict[str, Any]] = deque()
    for line in lines:
        try:
            queue.extend(json.loads(json.dumps(r)) for _, r in parse_and_route(line).routed)
        except PostParseError:
            continue
    mentions: list[Mention] = []
    while queue:
        record = queue.popleft()
        if record["post"].get("t"):
            clock.observe_iso(record["post"]["t"])
        assert clock.stream_time is not None
        applied = ledger.apply(record, clock.stream_time)
        queue.extend(rerouted for _, rerouted in applied.reroutes)
        mentions.extend(applied.mentions)
    return mentions


def saved(value: Any) -> Any:
    """What a changelog record gives back (JSON, as the tables store it; packed bytes
    are written as a JSON string, `streams.direct_table`, and come back as a str)."""
    return json.loads(json.dumps(value, default=bytes.decode))


def packed(changes: dict[str, Any]) -> dict[str, Any]:
    """Account entries as the worker stores them (None: deleted)."""
    return {key: None if entry is None else stored.pack_account_entry(entry)
            for key, entry in changes.items()}  # fmt: skip


def drive(
    mentions: list[Mention],
    partitions: int,
    rng: random.Random,
    crash_rate: float,
    as_of: datetime,
) -> tuple[dict[str, Any], int]:
    """Count `mentions` (with redeliveries) through crashes; the summaries and crashes."""
    # Mention-batch records on the paper's partition, a few mentions each; some
    # mentions twice (a replayed ledger sends them again, at a later offset).
    records: list[list[list[Mention]]] = [[] for _ in range(partitions)]
    for mention in mentions:
        for _ in range(2 if rng.random() < 0.05 else 1):
            partition = records[zlib.crc32(mention.arxiv_id.encode()) % partitions]
            if not partition or rng.random() < 0.4:
                partition.append([])
            partition[-1].append(mention)
    durable_papers: dict[str, Any] = {}
    durable_accounts: dict[str, Any] = {}
    committed = [0] * partitions
    papers, accounts = saved(durable_papers), saved(durable_accounts)
    position = list(committed)
    crashes = 0

    def crash() -> None:
        nonlocal papers, accounts, position, crashes
        papers, accounts = saved(durable_papers), saved(durable_accounts)
        position = list(committed)
        crashes += 1

    while any(position[p] < len(records[p]) for p in range(partitions)):
        # A batch: a few records of one or more partitions, in offset order on each.
        by_paper: dict[str, list[tuple[int, Mention]]] = {}
        partition_of: dict[str, int] = {}
        for partition in range(partitions):
            take = rng.randint(0, 4)
            for offset in range(
                position[partition], min(position[partition] + take, len(records[partition]))
            ):
                for mention in records[partition][offset]:
                    by_paper.setdefault(mention.arxiv_id, []).append((offset, mention))
                    partition_of[mention.arxiv_id] = partition
                position[partition] = offset + 1
        staged = StagedAccounts(accounts)
        for arxiv_id, positioned in by_paper.items():
            state, _ = count_paper_at(
                arxiv_id,
                UnpackedSummaries(papers).get(arxiv_id),
                positioned,
                partition_of[arxiv_id],
                staged,
                as_of,
            )
            papers[arxiv_id] = stored.pack_summary(state)  # as the worker stores it
        if rng.random() < crash_rate:
            # Killed while the summaries were being sent: any of them may be durable.
            for arxiv_id in by_paper:
                if rng.random() < 0.5:
                    durable_papers[arxiv_id] = saved(papers[arxiv_id])
            crash()
            continue
        for arxiv_id in by_paper:
            durable_papers[arxiv_id] = saved(papers[arxiv_id])
        if rng.random() < crash_rate:
            crash()  # between the two writes: summaries durable, account entries lost
            continue
        accounts.update(packed(staged.changes))
        for key, entry in packed(staged.changes).items():
            if rng.random() < 0.5 or rng.random() > crash_rate:
                durable_accounts[key] = entry
        if rng.random() < crash_rate:
            crash()  # some account entries durable, offsets not committed
            continue
        durable_accounts.update(packed(staged.changes))
        if rng.random() < 0.5:  # Faust commits now and then
            committed = list(position)
    return dict(UnpackedSummaries(papers)), crashes


@functools.cache
def reference_of(corpus: str) -> tuple[SimulationResult, list[Mention]]:
    lines = SEED_LINES if corpus == "seed" else FUZZ_LINES
    return simulate(lines), ledger_mentions(lines)


def assert_exact_through_crashes(corpus: str, partitions: int, seed: int) -> None:
    reference, mentions = reference_of(corpus)
    as_of = max(update.as_of for update in reference.counts.values())
    rng = random.Random(seed)
    states, crashes = drive(mentions, partitions, rng, 0.15, as_of)
    assert crashes > 0
    assert set(states) == set(reference.counts)
    for arxiv_id, expected in reference.counts.items():
        assert counting.count_update(arxiv_id, states[arxiv_id], as_of) == expected, arxiv_id


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32))
def test_seed_sample_counts_are_exact_whatever_the_crashes(partitions: int, seed: int) -> None:
    assert_exact_through_crashes("seed", partitions, seed)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32))
def test_hostile_corpus_counts_are_exact_whatever_the_crashes(partitions: int, seed: int) -> None:
    """Reposts, deletes (removals), duplicates and bad lines among the posts."""
    assert_exact_through_crashes("hostile", partitions, seed)


def mention(post_id: str, author: str = "a", op: str = "add") -> Mention:
    return Mention(
        post_id=post_id,
        arxiv_id="1602.02410",
        created_at=datetime(2026, 3, 1, 11, tzinfo=UTC),
        source="x",
        kind="post",
        author_id=author,
        op=op,  # type: ignore[arg-type]
    )


def test_the_old_write_order_lost_a_post_on_replay() -> None:
    """The bug this fixes: account entry saved, summary lost, batch replayed: the entry
    dedupes the post and the summary never gets it (141 posts instead of 142)."""
    accounts: dict[str, Any] = {}
    count_paper("1602.02410", None, [mention("p1")], accounts, AS_OF)
    _, update = count_paper("1602.02410", None, [mention("p1")], saved(accounts), AS_OF)
    assert update.posts["all"] == 0


def test_summary_saved_account_entry_lost_replays_exactly() -> None:
    """The order now: summary durable, its account entry lost, the batch replayed."""
    accounts = StagedAccounts({})
    batch = [(7, mention("p1")), (7, mention("p2", "b")), (8, mention("p1", op="remove"))]
    state, _ = count_paper_at("1602.02410", None, batch, 3, accounts, AS_OF)
    assert state[APPLIED_THROUGH] == [3, 8, MARKER_TOPIC]
    durable_summary, durable_accounts = saved(state), StagedAccounts({})
    # Replayed from offset 7, and one more post after it.
    again = [*batch, (9, mention("p3", "c"))]
    state, update = count_paper_at("1602.02410", durable_summary, again, 3, durable_accounts, AS_OF)
    assert update.posts["all"] == 2 and update.accounts["all"] == 2
    # The account entries caught up: p1 stays withdrawn, p2 counted once.
    assert sorted(durable_accounts.changes) == [
        "1602.02410 x:a",
        "1602.02410 x:b",
        "1602.02410 x:c",
    ]
    state, update = count_paper_at(
        "1602.02410",
        state,
        [(10, mention("p2", "b")), (10, mention("p1"))],
        3,
        durable_accounts,
        AS_OF,
    )
    assert update.posts["all"] == 2  # redelivered at a later offset: deduped by post id


def test_a_summary_stored_before_the_marker_still_loads_and_counts() -> None:
    accounts: dict[str, Any] = {}
    old, _ = count_paper("1602.02410", None, [mention("p1")], accounts, AS_OF)
    assert APPLIED_THROUGH not in old
    state, update = count_paper_at(
        "1602.02410", saved(old), [(0, mention("p1")), (0, mention("p2", "b"))], 0, accounts, AS_OF
    )
    assert update.posts["all"] == 2 and state[APPLIED_THROUGH] == [0, 0, MARKER_TOPIC]


def test_a_marker_of_the_old_mention_batches_topic_says_nothing_about_the_mentions_topic() -> None:
    """Before session 15 the marker counted offsets of the worker's own copy of the
    mentions (`mentions.batches`). Read against the mentions topic, its offset means
    nothing: a new mention at a lower offset there still counts, and one counted before
    counts once (the account entries dedupe it)."""
    accounts: dict[str, Any] = {}
    old, _ = count_paper("1602.02410", None, [mention("p1")], accounts, AS_OF)
    old[APPLIED_THROUGH] = [0, 500]  # untagged: the old topic's offset
    state, update = count_paper_at(
        "1602.02410", saved(old), [(3, mention("p1")), (4, mention("p2", "b"))], 0, accounts, AS_OF
    )
    assert update.posts["all"] == 2 and update.accounts["all"] == 2
    assert state[APPLIED_THROUGH] == [0, 4, MARKER_TOPIC]
