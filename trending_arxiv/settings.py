"""Typed settings, read from environment variables (and an optional `.env`).

One settings object per process: each process builds the subclass it needs
(`WorkerSettings`, `SinkSettings`, ...). Kafka and Elasticsearch addresses use the
conventional names `KAFKA_BOOTSTRAP_SERVERS` and `ELASTICSEARCH_URL`; everything else
is prefixed with `TRENDING_`. Secrets are `SecretStr` so they never show in logs or
reprs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trending_arxiv.core.alerting import AlertRules


@dataclass(frozen=True)
class TopicNames:
    """Kafka topic names of one namespace."""

    raw_posts: str
    routed_posts: str
    mentions: str
    counts: str
    alerts: str
    dead_letter: str


@dataclass(frozen=True)
class IndexNames:
    """Elasticsearch index names of one namespace."""

    papers: str
    mentions: str
    follows: str


def redact_url(url: str) -> str:
    """`url` without its password (`http://user:***@host`), safe to log or show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class CommonSettings(BaseSettings):
    """Where Kafka and Elasticsearch are, and which namespace of topics/indices to use."""

    model_config = SettingsConfigDict(
        env_prefix="TRENDING_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "TRENDING_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    elasticsearch_url: str = Field(
        default="http://127.0.0.1:9200",
        validation_alias=AliasChoices("ELASTICSEARCH_URL", "TRENDING_ELASTICSEARCH_URL"),
    )
    elasticsearch_username: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ELASTICSEARCH_USERNAME", "TRENDING_ELASTICSEARCH_USERNAME"),
    )
    elasticsearch_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ELASTICSEARCH_PASSWORD", "TRENDING_ELASTICSEARCH_PASSWORD"),
    )
    elasticsearch_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ELASTICSEARCH_API_KEY", "TRENDING_ELASTICSEARCH_API_KEY"),
    )
    elasticsearch_ca_certs: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ELASTICSEARCH_CA_CERTS", "TRENDING_ELASTICSEARCH_CA_CERTS"),
    )
    namespace: str = Field(
        default="trending",
        description="Prefix of every topic and index, so separate runs never mix.",
    )
    topic_partitions: int = Field(default=4, ge=1)
    # What changes on a cluster (docker-compose.cluster.yml): replicas of every topic we
    # create (Faust's changelogs too) and how many must acknowledge a write; shards and
    # replicas of our Elasticsearch indices. The defaults fit one Kafka and one ES node.
    topic_replication_factor: int = Field(default=1, ge=1)
    topic_min_insync_replicas: int | None = Field(default=None, ge=1)
    index_shards: int = Field(default=1, ge=1)
    index_replicas: int = Field(default=0, ge=0)
    # Where `trending-arxiv up` keeps its children's state (read by `status`, /healthz).
    run_state_dir: str = ".stack/up"
    log_level: str = "INFO"

    @field_validator("namespace")
    @classmethod
    def _namespace_is_safe(cls, value: str) -> str:
        allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
        if not value or not set(value) <= allowed or value[0] in "-_":
            raise ValueError(
                "namespace must be lower-case letters, digits, '-' or '_' "
                f"(it names Kafka topics and Elasticsearch indices), got {value!r}"
            )
        return value

    @property
    def topic_configs(self) -> dict[str, str]:
        """Per-topic configs of every topic we create (`min.insync.replicas` on a cluster)."""
        if self.topic_min_insync_replicas is None:
            return {}
        return {"min.insync.replicas": str(self.topic_min_insync_replicas)}

    @property
    def topics(self) -> TopicNames:
        ns = self.namespace
        return TopicNames(
            raw_posts=f"{ns}.posts.raw",
            # Internal: parsed posts keyed by their join key (see trending_arxiv.core.ledger).
            routed_posts=f"{ns}.posts.routed",
            # The ledger's mentions, in envelopes on each paper's partition: read by the
            # worker's counting agent and by the sink.
            mentions=f"{ns}.mentions",
            counts=f"{ns}.counts",
            alerts=f"{ns}.alerts",
            dead_letter=f"{ns}.deadletter",
        )

    @property
    def all_topics(self) -> list[str]:
        topics = self.topics
        return [
            topics.raw_posts,
            topics.routed_posts,
            topics.mentions,
            topics.counts,
            topics.alerts,
            topics.dead_letter,
        ]

    @property
    def indices(self) -> IndexNames:
        ns = self.namespace
        return IndexNames(
            papers=f"{ns}-papers",
            mentions=f"{ns}-mentions",
            follows=f"{ns}-follows",
        )

    @property
    def elasticsearch_url_redacted(self) -> str:
        """The Elasticsearch URL for messages: a password in it is replaced by `***`."""
        return ",".join(redact_url(url) for url in self.elasticsearch_urls)

    @property
    def elasticsearch_urls(self) -> list[str]:
        """The nodes to talk to: ELASTICSEARCH_URL may list several, comma-separated."""
        return [url.strip() for url in self.elasticsearch_url.split(",") if url.strip()]

    def elasticsearch_client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `elasticsearch.Elasticsearch` (auth, TLS, JSON) from settings."""
        # Imported here: the worker's settings come from this module too, without the client.
        from elasticsearch.serializer import OrjsonSerializer

        # Responses decoded by orjson: with the standard json module, decoding bulk
        # responses took a third of the sink's CPU.
        kwargs: dict[str, Any] = {
            "hosts": self.elasticsearch_urls,
            "serializer": OrjsonSerializer(),
        }
        if self.elasticsearch_api_key is not None:
            kwargs["api_key"] = self.elasticsearch_api_key.get_secret_value()
        elif self.elasticsearch_username and self.elasticsearch_password is not None:
            kwargs["basic_auth"] = (
                self.elasticsearch_username,
                self.elasticsearch_password.get_secret_value(),
            )
        if self.elasticsearch_ca_certs:
            kwargs["ca_certs"] = self.elasticsearch_ca_certs
        return kwargs


class WorkerSettings(CommonSettings):
    """Settings of the Faust stream worker."""

    worker_id: str = "trending-arxiv-worker"
    worker_data_dir: str = ".stack/faust"
    worker_web_port: int = 6066
    worker_web_enabled: bool = False
    # Post ids are remembered (dedupe, deletes, repost credits) this long in stream time,
    # then forgotten: a post redelivered later counts again. Swept every
    # `dedupe_prune_seconds`; this bounds the worker's memory.
    dedupe_retention_days: float = Field(default=30.0, gt=0)
    dedupe_prune_seconds: float = Field(default=3600.0, gt=0)
    trend_half_life_hours: float = Field(default=6.0, gt=0)
    alert_min_accounts_1h: int = Field(default=10, ge=1)
    alert_velocity_ratio: float = Field(default=5.0, gt=0)
    alert_velocity_min_posts_1h: int = Field(default=5, ge=1)
    repost_join_wait_seconds: float = Field(default=3600.0, ge=0)
    # How often the worker drops reposts that waited longer than that for their subject.
    repost_expiry_check_seconds: float = Field(default=60.0, gt=0)
    # How often a worker reports, when it changed, how far it has parsed its raw
    # partitions to every ledger partition (repost expiry waits for all of them).
    progress_report_seconds: float = Field(default=0.5, gt=0)
    counts_refresh_seconds: float = Field(default=60.0, gt=0)
    # Stream time is the minimum over the worker's raw partitions of each one's newest
    # event time; a partition silent this long (wall clock) is left out of it.
    watermark_idle_seconds: float = Field(default=5.0, gt=0)
    # Alerts are decided once stream time has passed their moment (`core.alert_clock`),
    # which assumes each raw partition's posts come in event-time order; posts up to
    # this many seconds out of order are still exact (an archive not quite sorted),
    # at the price of alerts that much later in event time.
    alert_lateness_seconds: float = Field(default=0.0, ge=0)
    # How often (wall clock) the counting agent forgets the alert logs no moment still
    # to come can see (a paper quiet for a day of event time): they hold the worker's
    # memory otherwise. A sweep reads every log's first field only.
    alert_log_sweep_seconds: float = Field(default=5.0, gt=0)
    # Apply the ledger straight from the raw topic when a post's key already sits on the
    # partition the ledger keeps it in (skips the routing hop). Needs the raw topic to
    # have `topic_partitions` partitions; the worker turns it off when it does not.
    ledger_in_place: bool = True
    batch_size: int = Field(default=500, ge=1)
    # Records per batch of the raw-posts agent, if not `batch_size`. An envelope record
    # (trending_arxiv.core.envelope) carries ~100 posts, so with a backlog a batch holds
    # up to ~50k posts: each paper is counted once per batch, so big batches cost least
    # a post (bench_worker --compare); live, a batch closes after batch_timeout_seconds.
    raw_batch_size: int | None = Field(default=None, ge=1)
    batch_timeout_seconds: float = Field(default=0.1, gt=0)
    # Table writes queue in Faust's producer buffer; past this size the consumer stops
    # and drains it one message at a time (Faust's default is 100, which stalls a busy
    # worker on every batch). Bounded, so memory stays bounded.
    producer_buffer_max_messages: int = Field(default=20_000, ge=1)
    # asyncio event loop of the worker: uvloop measured ~1.3x on Faust's consumption path.
    worker_event_loop: Literal["aio", "uvloop"] = "uvloop"
    # Python's cyclic garbage collector: allocations between young collections. The
    # default (700) makes the worker, whose tables hold millions of small containers,
    # spend ~15% of its CPU collecting (bench_worker); the tables are acyclic, so rarer
    # collections only delay freeing the few cycles (Faust's own objects).
    worker_gc_threshold: int = Field(default=50_000, ge=700)
    # Seconds between `malloc_trim` calls, which give the heap pages batches freed back to
    # the system (streams/memory.py; ~40 MiB of the worker's peak at 1M posts). 0: never.
    worker_malloc_trim_seconds: float = Field(default=5.0, ge=0)
    # Bytes the consumer fetches ahead per partition (Faust's `consumer_max_fetch_size`,
    # whose default is 1 MiB). Fetched records wait decompressed in the worker: with a
    # backlog on 3 topics x 8 partitions, 1 MiB each took the worker's peak at 1M posts
    # from ~910 to ~1,000 MiB; 512 KiB costs up to ~3% more CPU a post (bench_worker).
    # A larger record still comes whole.
    worker_max_fetch_bytes: int = Field(default=524_288, ge=65_536)
    # A worker whose offset commits stand still this long while records wait for it, and
    # Kafka answers, restarts itself in place (same PID; see streams/watchdog.py). 0: never.
    worker_stall_restart_seconds: float = Field(default=45.0, ge=0)
    worker_stall_check_seconds: float = Field(default=5.0, gt=0)
    # Standby copies of other workers' table partitions (Faust's table_standby_replicas,
    # whose default is 1). With a standby, each of two workers keeps the other's tables up
    # to date from their changelogs: a worker that dies is replaced at once, but each
    # does the tables' work twice (bench_worker, 1M posts, 8 partitions: two workers
    # 5.8k posts/s with one standby, slower than one worker alone; 12.4k without). 0: a
    # partition that moves has its table rebuilt from its changelog (Faust's recovery).
    table_standby_replicas: int = Field(default=0, ge=0)

    def alert_rules(self) -> AlertRules:
        """The alert thresholds the worker (and the demo's reference) applies."""
        return AlertRules(
            min_accounts_1h=self.alert_min_accounts_1h,
            velocity_ratio=self.alert_velocity_ratio,
            velocity_min_posts_1h=self.alert_velocity_min_posts_1h,
        )


class SinkSettings(CommonSettings):
    """Settings of the Elasticsearch sink."""

    sink_group_id: str = "trending-arxiv-sink"
    sink_batch_size: int = Field(default=1000, ge=1)
    # At most about this many bytes of record values in a sink batch: a record may be an
    # envelope of hundreds of mentions, so `sink_batch_size` alone bounds nothing.
    sink_batch_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    # Python's cyclic garbage collector: allocations between young collections. A batch's
    # bulk operations (~4 containers a mention, ~20k mentions a batch) live until it is
    # written, so at the default (700) the collector walks them again and again: half of
    # the CPU of building a batch. Documents are acyclic, as the worker's tables.
    sink_gc_threshold: int = Field(default=50_000, ge=700)
    sink_flush_seconds: float = Field(default=0.2, gt=0)
    sink_max_retry_seconds: float = Field(default=60.0, gt=0)
    sink_refresh_interval: str = "500ms"
    # A group rebalance that never completes (a member that never rejoins) would stall
    # the sink for good: after this long without a successful commit while records keep
    # coming, the sink leaves the group and joins afresh (the batch is redone, same _ids).
    sink_stalled_commit_seconds: float = Field(default=45.0, gt=0)
    catalog_path: str | None = Field(
        default=None,
        description="JSON/JSON-lines file of paper metadata to enrich from before asking arXiv.",
    )
