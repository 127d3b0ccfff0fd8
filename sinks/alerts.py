"""`trending-arxiv alerts`: deliver the stream's alerts to webhooks, Slack and stdout.

Consumes the alerts topic (kafka-python, manual commits), matches each alert against
the delivery rules and sends it to the rules' targets, retrying with back-off.

Delivered once: every alert is recorded in the `{namespace}-alerts` Elasticsearch index
under `_id = alert_id`, with the targets it reached (`delivered_to`) written after each
successful delivery. Offsets are committed only after an alert is handled, so after a
crash the alert comes again and goes only to the targets not yet in `delivered_to`
(one delivery per target, across restarts). A target that keeps failing past the retry
budget, or refuses for good (4xx), is recorded in `failed_to` and logged; the consumer
moves on rather than blocking every later alert (if the alert is read again, e.g. by a new
consumer group, the failed targets get one more try; delivered ones never do). The same
index feeds Kibana's alert timeline. While Elasticsearch is unreachable the consumer
waits and retries the alert it holds (nothing is committed meanwhile).

Rules file (YAML or JSON, `TRENDING_ALERTS_RULES_PATH` or `--rules`)::

    targets:
      - {name: team, type: webhook, url: "https://example.org/hook", headers: {X-Token: abc}}
      - {name: slack, type: slack, url_env: SLACK_WEBHOOK_URL}   # secret from the environment
      - {name: console, type: stdout}
    rules:
      - name: nlp-hot
        targets: [slack, console]
        categories: [cs.CL, "cs.*"]      # any of the paper's categories; "x.*" = prefix
        alert_rules: [accounts_1h]       # stream rules (accounts_1h, velocity); default all
        min: {accounts_1h: 20}           # thresholds on the alert's numbers
        users: [smerity]                 # a followed account posted it in the last 24h

Without a rules file, the targets come from `TRENDING_ALERTS_WEBHOOK_URL`,
`TRENDING_ALERTS_SLACK_WEBHOOK_URL` and `TRENDING_ALERTS_STDOUT`, and every alert goes
to all of them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import typer
import yaml
from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from sinks.alert_targets import (
    DeliveryError,
    SlackTarget,
    StdoutTarget,
    Target,
    WebhookTarget,
    deliver_with_retries,
    secret_url,
)
from sinks.consume_loop import ConsumeLoop, ConsumeOptions
from trending_arxiv.core.models import Alert, to_utc_iso
from trending_arxiv.kafka import ensure_topics
from trending_arxiv.retry import Stopped, call_until_available
from trending_arxiv.runtime import EXIT_USAGE, configure_logging, run_service
from trending_arxiv.settings import CommonSettings

log = logging.getLogger(__name__)
POLL_RECORDS = 10

ALERTS_MAPPINGS: dict[str, Any] = {
    "dynamic": "false",
    "properties": {
        "@timestamp": {"type": "date"},
        "alert_id": {"type": "keyword"},
        "arxiv_id": {"type": "keyword"},
        "rule": {"type": "keyword"},
        "reason": {"type": "text"},
        "numbers": {
            "properties": {
                name: {"type": "double"}
                for name in ("posts_1h", "accounts_1h", "posts_24h", "velocity", "trend_score")
            }
        },
        "title": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}},
        "categories": {"type": "keyword"},
        "primary_category": {"type": "keyword"},
        "matched_rules": {"type": "keyword"},
        "subscription": {"type": "keyword"},  # set by sinks.subscriptions_delivery
        "papers": {"type": "keyword"},
        "delivered_to": {"type": "keyword"},
        "failed_to": {"type": "keyword"},
        "delivered_at": {"type": "date"},
    },
}


def alerts_index(settings: CommonSettings) -> str:
    return f"{settings.namespace}-alerts"


def ensure_alerts_index(es: Elasticsearch, settings: CommonSettings) -> None:
    """Create (or update) the alerts index template and index; idempotent."""
    index = alerts_index(settings)
    es.indices.put_index_template(
        name=index,
        index_patterns=[index],
        template={
            # Small: one shard; replicated like the other indices on a cluster.
            "settings": {"number_of_shards": 1, "number_of_replicas": settings.index_replicas},
            "mappings": ALERTS_MAPPINGS,
        },
        priority=100,
    )
    if not es.indices.exists(index=index):
        es.options(ignore_status=400).indices.create(index=index)  # 400: created meanwhile


class AlertSettings(CommonSettings):
    """Settings of the alert deliverer (environment variables `TRENDING_ALERTS_*`)."""

    alerts_group_id: str = "trending-arxiv-alerts"
    alerts_rules_path: str | None = None
    alerts_webhook_url: SecretStr | None = None
    alerts_slack_webhook_url: SecretStr | None = None
    alerts_stdout: bool = False
    alerts_max_retry_seconds: float = Field(default=60.0, gt=0)
    alerts_retry_initial_seconds: float = Field(default=0.5, gt=0)
    alerts_http_timeout_seconds: float = Field(default=10.0, gt=0)
    alerts_users_window_hours: float = Field(default=24.0, gt=0)


# -- the rules file ---------------------------------------------------------------------------
class TargetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    type: Literal["webhook", "slack", "stdout"]
    url: SecretStr | None = None
    url_env: str | None = Field(default=None, description="Read the URL from this variable.")
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_url(self) -> TargetConfig:
        if self.type != "stdout" and self.url is None and self.url_env is None:
            raise ValueError(f"target {self.name!r} ({self.type}) needs url or url_env")
        return self

    def resolved_url(self) -> SecretStr:
        return secret_url(self.url, self.url_env, f"target {self.name!r}")


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    targets: list[str] = Field(min_length=1)
    categories: list[str] = Field(default_factory=list)
    alert_rules: list[str] = Field(default_factory=list)
    min: dict[str, float] = Field(default_factory=dict)
    users: list[str] = Field(default_factory=list)


class RulesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: list[TargetConfig] = Field(min_length=1)
    rules: list[RuleConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _targets_exist(self) -> RulesConfig:
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError("target names must be unique")
        for rule in self.rules:
            unknown = sorted(set(rule.targets) - set(names))
            if unknown:
                raise ValueError(f"rule {rule.name!r} names unknown targets: {', '.join(unknown)}")
        return self


def load_rules(path: Path) -> RulesConfig:
    """Read and validate a YAML/JSON rules file; ValueError with the reason if it's wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"cannot read the alert rules file {path}: {error}") from error
    except yaml.YAMLError as error:
        raise ValueError(f"the alert rules file {path} is not valid YAML/JSON: {error}") from error
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as error:
        raise ValueError(f"the alert rules file {path} is invalid:\n{error}") from error


def rules_from_settings(settings: AlertSettings) -> RulesConfig:
    """The rules file, or one catch-all rule over the targets set in the environment."""
    if settings.alerts_rules_path:
        return load_rules(Path(settings.alerts_rules_path))
    targets: list[TargetConfig] = []
    if settings.alerts_webhook_url is not None:
        targets.append(
            TargetConfig(name="webhook", type="webhook", url=settings.alerts_webhook_url)
        )
    if settings.alerts_slack_webhook_url is not None:
        targets.append(
            TargetConfig(name="slack", type="slack", url=settings.alerts_slack_webhook_url)
        )
    if settings.alerts_stdout or not targets:
        targets.append(TargetConfig(name="stdout", type="stdout"))
    return RulesConfig(
        targets=targets, rules=[RuleConfig(name="all", targets=[t.name for t in targets])]
    )


def build_targets(config: RulesConfig, client: httpx.Client) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    for spec in config.targets:
        if spec.type == "stdout":
            targets[spec.name] = StdoutTarget(name=spec.name)
        elif spec.type == "slack":
            targets[spec.name] = SlackTarget(spec.name, spec.resolved_url(), client, spec.headers)
        else:
            targets[spec.name] = WebhookTarget(spec.name, spec.resolved_url(), client, spec.headers)
    return targets


def _category_matches(patterns: Sequence[str], categories: Sequence[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith(".*"):
            if any(c.startswith(pattern[:-1]) for c in categories):
                return True
        elif pattern in categories:
            return True
    return False


def rule_matches(
    rule: RuleConfig,
    alert: Alert,
    paper: dict[str, Any] | None,
    followed_by: Callable[[str], bool],
) -> bool:
    """Whether one delivery rule wants this alert (all of its conditions hold)."""
    if rule.alert_rules and alert.rule not in rule.alert_rules:
        return False
    for name, threshold in rule.min.items():
        if float(alert.numbers.get(name, float("-inf"))) < threshold:
            return False
    if rule.categories:
        categories = list((paper or {}).get("categories") or [])
        if not _category_matches(rule.categories, categories):
            return False
    return not rule.users or any(followed_by(user) for user in rule.users)


# -- the consumer -----------------------------------------------------------------------------
class AlertDeliverer:
    """Matches and delivers alerts, recording deliveries in the alerts index."""

    def __init__(
        self,
        settings: AlertSettings,
        config: RulesConfig,
        es: Elasticsearch | None = None,
        targets: dict[str, Target] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.es = es or Elasticsearch(**settings.elasticsearch_client_kwargs())
        self._client = httpx.Client(
            timeout=settings.alerts_http_timeout_seconds,
            transport=httpx.HTTPTransport(retries=1),  # connection-level retries only
            follow_redirects=False,
        )
        self.targets = targets or build_targets(config, self._client)
        self.stop_event = threading.Event()
        self.stats: dict[str, int] = {"alerts": 0, "delivered": 0, "skipped": 0, "failed": 0,
                                      "unreadable": 0}  # fmt: skip

    def close(self) -> None:
        self._client.close()

    def request_stop(self) -> None:
        """Stop before the next alert (an unfinished batch is not committed); signal-safe."""
        self.stop_event.set()

    def _paper(self, arxiv_id: str) -> dict[str, Any] | None:
        try:
            doc = self.es.get(
                index=self.settings.indices.papers,
                id=arxiv_id,
                source_includes=["title", "authors", "categories", "primary_category",
                                 "abs_url", "pdf_url"],
            )  # fmt: skip
        except NotFoundError:
            return None
        source: dict[str, Any] = doc["_source"]
        return source

    def _followed_by(self, alert: Alert) -> Callable[[str], bool]:
        def check(user: str) -> bool:
            since = alert.triggered_at - timedelta(hours=self.settings.alerts_users_window_hours)
            lookup = {"index": self.settings.indices.follows, "id": user, "path": "accounts"}
            query = {"bool": {"filter": [
                {"term": {"arxiv_id": alert.arxiv_id}},
                {"range": {"@timestamp": {"gte": to_utc_iso(since),
                                          "lte": to_utc_iso(alert.triggered_at)}}},
                {"terms": {"account": lookup}},
            ]}}  # fmt: skip
            try:
                count = self.es.count(index=self.settings.indices.mentions, query=query)
            except NotFoundError:
                return False  # no follows/mentions index, or no list for this user
            return int(count["count"]) > 0

        return check

    def _record(self, alert: Alert) -> dict[str, Any] | None:
        try:
            doc = self.es.get(index=alerts_index(self.settings), id=alert.alert_id)
        except NotFoundError:
            return None
        source: dict[str, Any] = doc["_source"]
        return source

    def _save(self, record: dict[str, Any]) -> None:
        self.es.index(index=alerts_index(self.settings), id=record["alert_id"], document=record)

    def handle(self, alert: Alert) -> list[str]:
        """Deliver one alert to the targets its rules name; returns the targets reached now."""
        self.stats["alerts"] += 1
        paper = self._paper(alert.arxiv_id)
        followed_by = self._followed_by(alert)
        matched = [r for r in self.config.rules if rule_matches(r, alert, paper, followed_by)]
        wanted = list(dict.fromkeys(t for r in matched for t in r.targets))
        previous = self._record(alert) or {}
        done = set(previous.get("delivered_to") or [])
        failed = set(previous.get("failed_to") or [])
        record = {
            "@timestamp": to_utc_iso(alert.triggered_at),
            "alert_id": alert.alert_id,
            "arxiv_id": alert.arxiv_id,
            "rule": alert.rule,
            "reason": alert.reason,
            "numbers": dict(alert.numbers),
            "title": (paper or {}).get("title"),
            "categories": (paper or {}).get("categories") or [],
            "primary_category": (paper or {}).get("primary_category"),
            "matched_rules": [r.name for r in matched],
            "delivered_to": sorted(done),
            "failed_to": sorted(failed - done),
            "delivered_at": previous.get("delivered_at"),
        }
        reached: list[str] = []
        pending = [t for t in wanted if t not in done]
        self.stats["skipped"] += len(wanted) - len(pending)
        for name in pending:
            try:
                deliver_with_retries(
                    self.targets[name], alert, paper,
                    max_seconds=self.settings.alerts_max_retry_seconds,
                    initial_wait=self.settings.alerts_retry_initial_seconds,
                )  # fmt: skip
            except DeliveryError as error:
                self.stats["failed"] += 1
                log.error("alert %s not delivered: %s", alert.alert_id, error)
                failed.add(name)
            else:
                self.stats["delivered"] += 1
                reached.append(name)
                done.add(name)
                record["delivered_at"] = to_utc_iso(datetime.now(UTC))
            record["delivered_to"] = sorted(done)
            record["failed_to"] = sorted(failed - done)
            self._save(record)  # after every target: a crash never re-sends what went out
        if not pending:
            self._save(record)
        return reached

    def handle_until_stored(self, alert: Alert) -> None:
        """Handle an alert, waiting out Elasticsearch outages (nothing is committed meanwhile).

        Asked to stop meanwhile, it returns with the alert unhandled (`write_batch` then
        leaves the batch uncommitted).
        """
        if self.stop_event.is_set():
            return
        with contextlib.suppress(Stopped):
            call_until_available(
                lambda: self.handle(alert), "Elasticsearch", (TransportError, ApiError),
                self.stop_event, max_wait_seconds=30.0,
            )  # fmt: skip

    def write_batch(self, records: list[ConsumerRecord]) -> None:
        """Handle a polled batch; `Stopped` if asked to stop first (then it is not committed)."""
        for record in records:
            try:
                alert = Alert.from_json(record.value)
            except (ValueError, KeyError, TypeError) as error:
                self.stats["unreadable"] += 1
                log.error(
                    "skipping unreadable alert at %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    error,
                )
                continue
            self.handle_until_stored(alert)
        if self.stop_event.is_set():
            raise Stopped("stopped during a batch of alerts")  # it must come again

    def run(self, idle_exit_seconds: float | None = None) -> dict[str, int]:
        """Consume until stopped (or idle for `idle_exit_seconds`); returns the stats."""
        ensure_alerts_index(self.es, self.settings)
        ensure_topics(self.settings)  # the worker may not have created them yet
        retry_budget = POLL_RECORDS * len(self.targets) * self.settings.alerts_max_retry_seconds
        options = ConsumeOptions(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=f"{self.settings.namespace}-{self.settings.alerts_group_id}",
            topics=[self.settings.topics.alerts],
            max_records=POLL_RECORDS,
            poll_seconds=0.5,
            # A batch may spend the whole retry budget on every target: don't let the
            # group evict us meanwhile.
            max_poll_interval_ms=int(1000 * max(300.0, 60.0 + retry_budget)),
        )
        ConsumeLoop(options, self.write_batch, self.stop_event).run(idle_exit_seconds)
        return dict(self.stats)


def alerts_command(
    rules: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON delivery rules (default: TRENDING_ALERTS_RULES_PATH)."),
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option(help="Exit after this many seconds without alerts (default: never)."),
    ] = None,
) -> None:
    """Deliver the stream's alerts to webhooks, Slack and stdout, each alert once."""
    settings = AlertSettings()
    if rules is not None:
        settings = settings.model_copy(update={"alerts_rules_path": str(rules)})
    configure_logging(settings.log_level)
    try:
        config = rules_from_settings(settings)
        deliverer = AlertDeliverer(settings, config)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=EXIT_USAGE) from error
    try:
        stats = run_service(deliverer, lambda: deliverer.run(idle_exit_seconds=idle_exit))
    finally:
        deliverer.close()
    typer.echo(f"alerts stopped: {stats}", err=True)
