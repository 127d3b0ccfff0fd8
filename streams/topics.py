"""Kafka topics of the stream app (values are JSON or raw bytes; see trending_arxiv.core.models)."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from trending_arxiv.settings import WorkerSettings


@dataclass(frozen=True)
class StreamTopics:
    raw_posts: faust.TopicT
    routed_posts: faust.TopicT
    mentions: faust.TopicT
    counts: faust.TopicT
    alerts: faust.TopicT
    dead_letter: faust.TopicT


def declare_topics(app: faust.App, settings: WorkerSettings) -> StreamTopics:
    names = settings.topics

    def topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
            internal=True,
        )

    return StreamTopics(
        # Declared (created if missing) here too, so the worker can start before any producer.
        raw_posts=topic(names.raw_posts),
        routed_posts=topic(names.routed_posts),
        mentions=topic(names.mentions),
        counts=topic(names.counts),
        alerts=topic(names.alerts),
        dead_letter=topic(names.dead_letter),
    )
