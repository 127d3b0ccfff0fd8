"""Faust agents: thin adapters from topics and tables to the pure core.

    raw posts --parse--> routed posts --ledger--> mentions (one per post and paper, in envelopes)
                                                  mentions --count--> counts, alerts (the sink too)
        \\--> dead letters (anything we cannot parse, with the reason and the raw bytes)

One module per agent (parse_agent, ledger_agent, count_agent) and the timers (timers);
the steps themselves are `trending_arxiv.core.pipeline`'s, shared with `simulate()`.
Each agent takes events in batches (`take_events`). Table writes go through
`DirectTable`: each changed key's changelog record goes to the partition of the event
that caused it (the tables stay co-partitioned with their source topics), and outputs
are produced straight to the producer; both are flushed by Faust before it commits.
Stream time is a watermark over the worker's raw partitions (`core.clock.Watermark`);
repost expiry's covers every raw partition, whichever worker reads it (`streams.progress`).
"""

from __future__ import annotations

import faust

from streams import count_agent, ledger_agent, parse_agent, timers
from streams.context import Metrics, WorkerContext
from streams.tables import StreamTables
from streams.topics import StreamTopics
from trending_arxiv.settings import WorkerSettings

__all__ = ["Metrics", "register_agents"]


def register_agents(
    app: faust.App,
    topics: StreamTopics,
    tables: StreamTables,
    settings: WorkerSettings,
    metrics: Metrics,
) -> WorkerContext:
    """Attach the three agents and the timers (count refresh, repost expiry) to `app`."""
    worker = WorkerContext(app, topics, tables, settings, metrics)

    @app.task
    async def declare_output_topics() -> None:
        """Create the topics we only write to, with our partition count, before first use."""
        for topic in (topics.counts, topics.alerts, topics.dead_letter):
            await topic.maybe_declare()

    parse_agent.register(worker)
    ledger_agent.register(worker)
    count_agent.register(worker)
    timers.register(worker)
    return worker
