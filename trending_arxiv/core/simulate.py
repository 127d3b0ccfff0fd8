"""The whole counting pipeline in one process, without Kafka: the reference answer.

The demo uses it to know when the real pipeline has counted everything, and the tests
compare the real pipeline's results with it.
"""

from __future__ import annotations

import gzip
import json
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trending_arxiv.core import counting
from trending_arxiv.core.alerting import AlertRules, count_and_alert
from trending_arxiv.core.clock import StreamClock
from trending_arxiv.core.counting import PaperState
from trending_arxiv.core.ledger import Ledger
from trending_arxiv.core.models import Alert, CountUpdate, Mention
from trending_arxiv.core.pipeline import final_counts, parse_and_route
from trending_arxiv.core.posts import PostParseError


@dataclass
class SimulationResult:
    counts: dict[str, CountUpdate]
    mention_ids: set[str] = field(default_factory=set)
    dead_letters: list[tuple[int, str]] = field(default_factory=list)
    posts: int = 0
    #: Each paper's counting state at the end (`trending_arxiv.core.counting`).
    states: dict[str, PaperState] = field(default_factory=dict)
    #: The alerts the history triggers, in the order they fire (with `alert_rules`).
    alerts: list[Alert] = field(default_factory=list)
    #: Every mention the ledger gave (adds and removals), in order (with `keep_mentions`).
    mentions: list[Mention] = field(default_factory=list)

    @property
    def posts_by_paper(self) -> dict[str, int]:
        return {arxiv_id: update.posts["all"] for arxiv_id, update in self.counts.items()}


def read_lines(paths: Iterable[Path]) -> Iterator[bytes]:
    """Raw lines of JSON-lines files (`.gz` too), blank lines skipped."""
    for path in paths:
        opener: Any = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            for line in handle:
                if line.strip():
                    yield line.rstrip(b"\r\n")


def simulate(
    lines: Iterable[bytes],
    repost_wait_seconds: float = 3600.0,
    alert_rules: AlertRules | None = None,
    keep_mentions: bool = False,
) -> SimulationResult:
    """Parse, route, dedupe and count `lines` exactly as the stream does; with
    `alert_rules`, also evaluate them after each mention, at its event time
    (`alerting.count_and_alert`, as the worker does). `keep_mentions`: also return the
    mentions themselves (a bench's documents), not only their ids."""
    store: dict[str, Any] = {}
    ledger = Ledger(store, repost_wait_seconds)
    clock = StreamClock()
    states: dict[str, PaperState] = {}
    account_entries: dict[str, Any] = {}
    fired: dict[str, float] = {}
    result = SimulationResult(counts={}, states=states)
    queue: deque[dict[str, Any]] = deque()
    for number, line in enumerate(lines, start=1):
        try:
            parsed = parse_and_route(line)
        except PostParseError as error:
            result.dead_letters.append((number, str(error)))
            continue
        result.posts += parsed.posts
        queue.extend(json.loads(json.dumps(record)) for _, record in parsed.routed)
    while queue:
        record = queue.popleft()
        if record["post"].get("t"):
            clock.observe_iso(record["post"]["t"])
        now = clock.stream_time or datetime.now(UTC)
        applied = ledger.apply(record, now)
        queue.extend(rerouted for _, rerouted in applied.reroutes)
        for mention in applied.mentions:
            state = states.setdefault(mention.arxiv_id, counting.new_paper_state())
            if alert_rules is None:
                counting.apply_mentions(state, [mention], account_entries)
            else:
                result.alerts.extend(count_and_alert(
                    mention.arxiv_id, state, [mention], account_entries, alert_rules, fired
                ))  # fmt: skip
            if keep_mentions:
                result.mentions.append(mention)
            if mention.op == "add":
                result.mention_ids.add(mention.document_id)
            else:
                result.mention_ids.discard(mention.document_id)
    as_of = clock.stream_time or datetime.now(UTC)
    for update in final_counts(states, as_of):
        result.counts[update.arxiv_id] = update
    return result
