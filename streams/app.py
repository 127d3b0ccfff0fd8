"""The Faust application: built from settings, so each namespace gets its own app id."""

from __future__ import annotations

import logging

import faust
from kafka.errors import KafkaError

from streams.agents import Metrics, register_agents
from streams.memory import register_malloc_trim
from streams.offsets import use_gap_safe_consumer
from streams.partitioner import CachedPartitioner
from streams.tables import TABLE_NAMES, declare_tables
from streams.topics import declare_topics
from streams.watchdog import register_watchdog
from trending_arxiv.kafka import ensure_topics, partition_count
from trending_arxiv.retry import call_until_available
from trending_arxiv.runtime import collect_garbage_rarely
from trending_arxiv.settings import WorkerSettings


def app_id(settings: WorkerSettings) -> str:
    return f"{settings.namespace}-{settings.worker_id}"


def changelog_topics(settings: WorkerSettings) -> list[str]:
    """The tables' changelog topics, named as Faust names them."""
    return [f"{app_id(settings)}-{table}-changelog" for table in TABLE_NAMES]


def create_app(settings: WorkerSettings) -> tuple[faust.App, Metrics]:
    """A Faust app with the topics, tables, agents and timer of the pipeline."""
    app = faust.App(
        app_id(settings),
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        store="memory://",
        table_standby_replicas=settings.table_standby_replicas,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        datadir=settings.worker_data_dir,
        web_enabled=settings.worker_web_enabled,
        web_port=settings.worker_web_port,
        web_host="127.0.0.1",
        autodiscover=False,
        # Commit often: a crash then replays little, and replays are idempotent anyway.
        broker_commit_interval=1.0,
        producer_acks=-1,
        # Batch sends (every send was its own request) and compress in C (cramjam):
        # zstd is readable by both aiokafka and kafka-python (the sink).
        producer_compression_type="zstd",
        producer_linger=0.02,
        producer_max_batch_size=1_048_576,
        producer_partitioner=CachedPartitioner(),
        consumer_max_fetch_size=settings.worker_max_fetch_bytes,
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        logging_config=None,
    )
    use_gap_safe_consumer(app)
    app.producer.buffer.max_messages = settings.producer_buffer_max_messages
    metrics = Metrics()
    topics = declare_topics(app, settings)
    tables = declare_tables(app, settings.topic_partitions)
    register_agents(app, topics, tables, settings, metrics)
    register_watchdog(app, topics, settings)
    register_malloc_trim(app, settings.worker_malloc_trim_seconds)
    return app, metrics


def run_worker(settings: WorkerSettings) -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT."""
    from faust.worker import Worker

    if settings.worker_event_loop != "aio":
        # Before anything creates the loop (mode's documented way to pick it).
        import mode.loop

        mode.loop.use(settings.worker_event_loop)
    logging.getLogger("faust").setLevel(settings.log_level)
    collect_garbage_rarely(settings.worker_gc_threshold)
    # Kafka may still be starting (or down): wait for it rather than exit.
    call_until_available(
        lambda: ensure_topics(settings, compacted=changelog_topics(settings)),
        "Kafka",
        (KafkaError, TimeoutError),
    )
    raw_partitions = partition_count(settings.kafka_bootstrap_servers, settings.topics.raw_posts)
    if settings.ledger_in_place and raw_partitions != settings.topic_partitions:
        logging.getLogger(__name__).warning(
            "%s has %d partitions, not %d: every post takes the routing hop",
            settings.topics.raw_posts, raw_partitions, settings.topic_partitions,
        )  # fmt: skip
        settings = settings.model_copy(update={"ledger_in_place": False})
    app, _ = create_app(settings)
    worker = Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
