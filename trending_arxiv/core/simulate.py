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
from trending_arxiv.core.alert_book import alerts_in_event_time
from trending_arxiv.core.alerting import AlertRules
from trending_arxiv.core.clock import StreamClock
from trending_arxiv.core.counting import PaperState
from trending_arxiv.core.ledger import Ledger
from trending_arxiv.core.models import Alert, CountUpdate, Mention, parse_utc
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
    #: How far (seconds) a post with papers came behind the newest post of the lines
    #: before its own: the `TRENDING_ALERT_LATENESS_SECONDS` that replays it exactly.
    disorder_seconds: float = 0.0

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
    `alert_rules`, also the alerts of the whole history in event time
    (`alert_book.alerts_in_event_time`: what the worker fires behind its watermark).
    `keep_mentions`: also return the mentions themselves (a bench's documents), not
    only their ids."""
    store: dict[str, Any] = {}
    ledger = Ledger(store, repost_wait_seconds)
    clock = StreamClock()
    states: dict[str, PaperState] = {}
    account_entries: dict[str, Any] = {}
    result = SimulationResult(counts={}, states=states)
    queue: deque[dict[str, Any]] = deque()
    newest_line: float | None = None
    for number, line in enumerate(lines, start=1):
        try:
            parsed = parse_and_route(line)
        except PostParseError as error:
            result.dead_letters.append((number, str(error)))
            continue
        result.posts += parsed.posts
        for _, record in parsed.routed:
            queue.append(json.loads(json.dumps(record)))
            when = record["post"].get("t")
            if when and newest_line is not None:
                behind = newest_line - parse_utc(when).timestamp()
                result.disorder_seconds = max(result.disorder_seconds, behind)
        if parsed.newest is not None:
            newest_line = parsed.newest if newest_line is None else max(newest_line, parsed.newest)
    history: list[Mention] = []
    while queue:
        record = queue.popleft()
        if record["post"].get("t"):
            clock.observe_iso(record["post"]["t"])
        now = clock.stream_time or datetime.now(UTC)
        applied = ledger.apply(record, now)
        queue.extend(rerouted for _, rerouted in applied.reroutes)
        for mention in applied.mentions:
            state = states.setdefault(mention.arxiv_id, counting.new_paper_state())
            counting.apply_mentions(state, [mention], account_entries)
            if alert_rules is not None:
                history.append(mention)
            if keep_mentions:
                result.mentions.append(mention)
            if mention.op == "add":
                result.mention_ids.add(mention.document_id)
            else:
                result.mention_ids.discard(mention.document_id)
    if alert_rules is not None:
        result.alerts = alerts_in_event_time(history, alert_rules)
    as_of = clock.stream_time or datetime.now(UTC)
    for update in final_counts(states, as_of):
        result.counts[update.arxiv_id] = update
    return result
