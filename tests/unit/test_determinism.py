"""The same input gives the same answers however the stream batches and interleaves it.

`drive` plays the worker's steps (`trending_arxiv.core.pipeline`, the ledger, counting)
the way the stream can order them: raw lines on partitions by key, routed records and
mention batches on partitions by join key and paper, queues read in a random
interleaving and in batches of random sizes, states pruned at each batch's stream
time. Every paper's count update at the same moment must equal `simulate()`'s (the
in-order reference): counts, trend score and rank, velocity, span and sources.
"""

from __future__ import annotations

import json
import random
import zlib
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hostile.corpus import fuzz_corpus
from trending_arxiv.core import counting
from trending_arxiv.core.ledger import Ledger
from trending_arxiv.core.models import Mention, parse_utc
from trending_arxiv.core.pipeline import count_paper, group_by_paper, parse_and_route
from trending_arxiv.core.posts import PostParseError, parse_line
from trending_arxiv.core.simulate import simulate

SEED_SAMPLE = Path(__file__).resolve().parents[2] / "trending_arxiv" / "data" / "seed_posts.jsonl"
SEED_LINES = [line.rstrip(b"\n") for line in SEED_SAMPLE.read_bytes().splitlines() if line.strip()]
FUZZ_LINES = [line.raw for line in fuzz_corpus().generate(total=400, seed=11, order_safe=True)]


def partition_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


def raw_key(line: bytes) -> str:
    """The producers key a raw line by its (first) post's id."""
    try:
        posts = parse_line(line)
    except PostParseError:
        return ""
    return posts[0].post_id if posts else ""


def drive(lines: list[bytes], partitions: int, rng: random.Random) -> tuple[dict, datetime]:
    """Run `lines` through the pipeline's steps in a random stream order; return the paper
    states and the newest event time."""
    raw: list[deque[bytes]] = [deque() for _ in range(partitions)]
    for line in lines:
        raw[partition_of(raw_key(line), partitions)].append(line)
    routed: list[deque[dict[str, Any]]] = [deque() for _ in range(partitions)]
    batches: list[deque[Mention]] = [deque() for _ in range(partitions)]
    ledger = Ledger({}, repost_wait_seconds=3600.0)
    states: dict[str, Any] = {}
    accounts: dict[str, Any] = {}
    newest: datetime | None = None

    def observe(moment: datetime) -> None:
        nonlocal newest
        newest = moment if newest is None or moment > newest else newest

    queues: list[tuple[str, deque[Any]]] = [
        *(("raw", q) for q in raw),
        *(("routed", q) for q in routed),
        *(("mentions", q) for q in batches),
    ]
    while any(q for _, q in queues):
        kind, queue = rng.choice([(k, q) for k, q in queues if q])
        taken = [queue.popleft() for _ in range(min(len(queue), rng.randint(1, 40)))]
        if kind == "raw":
            for line in taken:
                try:
                    parsed = parse_and_route(line)
                except PostParseError:
                    continue
                for key, record in parsed.routed:
                    routed[partition_of(key, partitions)].append(json.loads(json.dumps(record)))
        elif kind == "routed":
            for record in taken:
                if record["post"].get("t"):
                    observe(parse_utc(record["post"]["t"]))
                assert newest is not None
                applied = ledger.apply(record, newest)
                for key, rerouted in applied.reroutes:
                    routed[partition_of(key, partitions)].append(rerouted)
                for mention in applied.mentions:
                    batches[partition_of(mention.arxiv_id, partitions)].append(mention)
        else:
            assert newest is not None
            for arxiv_id, mentions in group_by_paper(taken).items():
                states[arxiv_id], _ = count_paper(
                    arxiv_id, states.get(arxiv_id), mentions, accounts, newest
                )
    assert newest is not None
    return states, newest


def assert_same_counts(lines: list[bytes], partitions: int, seed: int) -> None:
    reference = simulate(lines)
    states, newest = drive(lines, partitions, random.Random(seed))
    as_of = max(update.as_of for update in reference.counts.values())
    assert newest == as_of
    assert set(states) == set(reference.counts)
    for arxiv_id, expected in reference.counts.items():
        got = counting.count_update(arxiv_id, states[arxiv_id], as_of)
        assert got == expected, arxiv_id


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**32))
def test_seed_sample_counts_do_not_depend_on_batching_or_order(partitions: int, seed: int) -> None:
    assert_same_counts(SEED_LINES, partitions, seed)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**32))
def test_hostile_corpus_counts_do_not_depend_on_batching_or_order(
    partitions: int, seed: int
) -> None:
    """Bluesky reposts and deletes, duplicates and bad lines among the posts."""
    assert_same_counts(FUZZ_LINES, partitions, seed)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 25), st.integers(0, 40 * 24 * 60), st.booleans()),
        min_size=1,
        max_size=60,
    ),
    st.randoms(use_true_random=False),
)
def test_paper_state_depends_only_on_its_mentions(
    events: list[tuple[int, int, bool]], rng: random.Random
) -> None:
    """Adds and removes of one paper (one account's posts weighed 1/k by event time) in
    any order and batching: the same trend score and rank, to the last bit."""
    as_of = datetime(2026, 3, 1, 12, tzinfo=UTC)
    first_time: dict[int, int] = {}
    mentions = []
    for number, minutes_ago, is_remove in events:
        at = first_time.setdefault(number, minutes_ago)  # a post has one time
        mentions.append(
            Mention(
                post_id=str(number),
                arxiv_id="2402.00001",
                created_at=datetime.fromtimestamp(as_of.timestamp() - 60 * at - 7, UTC),
                source="x",
                kind="post",
                author_id="abc"[number % 3],
                op="remove" if is_remove else "add",
            )
        )
    in_order, _ = count_paper("2402.00001", None, mentions, {}, as_of)
    expected = counting.count_update("2402.00001", in_order, as_of)
    # Removes that overtake their add win either way; shuffle the rest of the order.
    shuffled = [m for m in mentions]
    rng.shuffle(shuffled)
    removed = {m.post_id for m in mentions if m.op == "remove"}
    shuffled = [m for m in shuffled if m.op == "remove" or m.post_id not in removed]
    state, accounts = None, {}
    while shuffled:
        size = rng.randint(1, 10)
        state, _ = count_paper("2402.00001", state, shuffled[:size], accounts, as_of)
        shuffled = shuffled[size:]
    assert state is not None
    assert counting.count_update("2402.00001", state, as_of) == expected


def test_simulate_can_return_the_mentions_it_counted() -> None:
    """`keep_mentions` (the mapping bench's documents): the ledger's mentions in order,
    the live ones exactly `mention_ids`, the answers unchanged."""
    plain = simulate(SEED_LINES)
    kept = simulate(SEED_LINES, keep_mentions=True)
    assert plain.mentions == [] and kept.counts == plain.counts
    live: set[str] = set()
    for mention in kept.mentions:
        if mention.op == "add":
            live.add(mention.document_id)
        else:
            live.discard(mention.document_id)
    assert live == kept.mention_ids and len(kept.mentions) >= len(live) > 0
