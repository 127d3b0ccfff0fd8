"""`trending-arxiv subscriptions run`: evaluate subscriptions on the stream, deliver once.

Consumes the counts topic through `sinks.consume_loop` (its own consumer group, commits
after each batch is handled). For every count update it matches each trigger
subscription's query against the paper (metadata from the papers index) and evaluates its
trigger on event time
(`trending_arxiv.core.subscriptions`): `accounts` and `velocity` at every post of the
paper since the last evaluation, read from the mentions index (`sinks.subscriptions_views`),
so a replayed archive fires the same alert ids as it did live; `top` at the update.
Whenever it has caught up with the topic, it sends the digests due at the stream time
it has seen. Targets: `sinks.subscriptions_targets`.

Delivered once per subscription, as the stream's alerts are (`sinks.alerts`): every
alert or digest is recorded in `<ns>-alerts` under `_id = subscription:<alert id>` with
`subscription`, `delivered_to` and `failed_to`; an id already delivered is never sent
again, across restarts and re-reads of the topic. Delivery retries with back-off
(`sinks.alert_targets.deliver_with_retries`); webhooks, Slack, stdout and e-mail
(`sinks.subscriptions_email`). Logs name subscriptions, never addresses or URLs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import Field, SecretStr

from sinks.alert_targets import (
    DeliveryError,
    Target,
    deliver_with_retries,
)
from sinks.alerts import alerts_index, ensure_alerts_index
from sinks.consume_loop import ConsumeLoop, ConsumeOptions
from sinks.subscriptions import SubscriptionConfig, load_stored
from sinks.subscriptions_email import SmtpServer
from sinks.subscriptions_targets import build_target
from sinks.subscriptions_views import ViewReader, stream_time_from_index
from trending_arxiv.core.models import WINDOW_SECONDS, Alert, CountUpdate, to_utc_iso
from trending_arxiv.core.subscriptions import (
    PaperQuery,
    accounts_crossings,
    crossing_alert,
    digest_alert,
    digest_due,
    evaluate_trigger,
    velocity_alert,
    velocity_crossings,
)
from trending_arxiv.kafka import ensure_topics
from trending_arxiv.retry import Stopped, call_until_available
from trending_arxiv.settings import CommonSettings

log = logging.getLogger(__name__)


class SubscriptionSettings(CommonSettings):
    """Settings of the subscription service (`TRENDING_SUBSCRIPTIONS_*`, `TRENDING_SMTP_*`)."""

    subscriptions_group_id: str = "trending-arxiv-subscriptions"
    subscriptions_reload_seconds: float = Field(default=30.0, gt=0)
    subscriptions_max_retry_seconds: float = Field(default=60.0, gt=0)
    subscriptions_retry_initial_seconds: float = Field(default=0.5, gt=0)
    subscriptions_http_timeout_seconds: float = Field(default=10.0, gt=0)
    #: How long an update waits for the sink to have indexed the paper's posts it counts.
    subscriptions_sink_wait_seconds: float = Field(default=10.0, ge=0)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Trending arXiv <trending-arxiv@localhost>"
    smtp_starttls: bool = False

    def smtp_server(self) -> SmtpServer:
        return SmtpServer(
            host=self.smtp_host, port=self.smtp_port, sender=self.smtp_from,
            username=self.smtp_username, password=self.smtp_password,
            starttls=self.smtp_starttls, timeout=self.subscriptions_http_timeout_seconds,
        )  # fmt: skip


class SubscriptionService:
    """Evaluates stored subscriptions on count updates and delivers each alert once."""

    def __init__(self, settings: SubscriptionSettings, es: Elasticsearch | None = None) -> None:
        self.settings = settings
        self.es = es or Elasticsearch(**settings.elasticsearch_client_kwargs())
        self._client = httpx.Client(
            timeout=settings.subscriptions_http_timeout_seconds,
            transport=httpx.HTTPTransport(retries=1),
            follow_redirects=False,
        )
        self.subscriptions: list[SubscriptionConfig] = []
        self.targets: dict[str, Target] = {}
        self.stream_time: datetime | None = None
        self.stop_event = threading.Event()
        self.views = ViewReader(self.es, settings, self.stop_event,
                                settings.subscriptions_sink_wait_seconds)  # fmt: skip
        self._loaded_at = float("-inf")
        # (subscription, paper) -> stream time up to which its posts were evaluated.
        self._evaluated: dict[tuple[str, str], datetime] = {}
        self._digests_checked: tuple[datetime | None, float] | None = None
        self.stats: dict[str, int] = {"updates": 0, "alerts": 0, "digests": 0, "delivered": 0,
                                      "skipped": 0, "failed": 0, "unreadable": 0}  # fmt: skip

    def close(self) -> None:
        self._client.close()

    def request_stop(self) -> None:
        """Stop before the next update (an unfinished batch is not committed); signal-safe."""
        self.stop_event.set()

    # -- subscriptions ------------------------------------------------------------------
    def reload(self) -> None:
        found, errors = load_stored(self.es, self.settings)
        for error in errors:
            log.error("%s", error)
        targets: dict[str, Target] = {}
        usable = []
        for sub in found:
            try:
                targets[sub.name] = self._target(sub)
            except ValueError as error:
                log.error("subscription %r skipped: %s", sub.name, error)
                continue
            usable.append(sub)
        self.subscriptions, self.targets = usable, targets
        self._loaded_at = time.monotonic()

    def _target(self, sub: SubscriptionConfig) -> Target:
        return build_target(sub, self.settings.smtp_server(), self._client)

    def _event_time_alerts(
        self, sub: SubscriptionConfig, query: PaperQuery, update: CountUpdate
    ) -> list[Alert]:
        """An accounts or velocity trigger at every post's event time since the last
        evaluation (so how the stream batched the posts does not matter)."""
        assert sub.trigger is not None
        trigger = sub.trigger.core()
        window = trigger.window if trigger.kind == "accounts" else "24h"
        seconds = WINDOW_SECONDS[window] or 0.0
        key = (sub.name, update.arxiv_id)
        since = self._evaluated.get(key)
        if since is not None and update.as_of <= since:
            return []
        self.views.wait_for_sink(update)
        reach = since - timedelta(seconds=seconds) if since is not None else None
        posts = self.views.posts(query, update.arxiv_id, reach, update.as_of)
        self._evaluated[key] = update.as_of
        if trigger.kind == "velocity":
            moments = [moment for moment, _ in posts]
            fast = velocity_crossings(moments, trigger.velocity_ratio,
                                      trigger.velocity_min_posts_1h, since)  # fmt: skip
            return [velocity_alert(sub.name, update.arxiv_id, t, n, v) for t, n, v in fast]
        crossed = accounts_crossings(posts, seconds, trigger.min_accounts, since)
        return [crossing_alert(sub.name, update.arxiv_id, trigger, t, n) for t, n in crossed]

    def deliver_once(
        self, sub: SubscriptionConfig, alert: Alert, context: dict[str, Any] | None,
        extra: dict[str, Any], send: bool = True,
    ) -> bool:  # fmt: skip
        """Deliver unless already delivered; record the outcome. True if sent now."""
        doc_id = f"subscription:{alert.alert_id}"
        try:
            previous = self.es.get(index=alerts_index(self.settings), id=doc_id)["_source"]
        except NotFoundError:
            previous = {}
        if sub.name in (previous.get("delivered_to") or []):
            self.stats["skipped"] += 1
            return False
        record = {
            "@timestamp": to_utc_iso(alert.triggered_at),
            "alert_id": alert.alert_id,
            "subscription": sub.name,
            "arxiv_id": alert.arxiv_id,
            "rule": alert.rule,
            "reason": alert.reason,
            "numbers": dict(alert.numbers),
            "matched_rules": [sub.name],
            "delivered_to": [],
            "failed_to": [],
            "delivered_at": None,
            **extra,
        }
        sent = False
        if send:
            try:
                deliver_with_retries(
                    self.targets[sub.name], alert, context,
                    max_seconds=self.settings.subscriptions_max_retry_seconds,
                    initial_wait=self.settings.subscriptions_retry_initial_seconds,
                )  # fmt: skip
            except DeliveryError as error:
                self.stats["failed"] += 1
                log.error("subscription %r: %s not delivered: %s", sub.name, alert.alert_id, error)
                record["failed_to"] = [sub.name]
            else:
                sent = True
                self.stats["delivered"] += 1
                record["delivered_to"] = [sub.name]
                record["delivered_at"] = to_utc_iso(datetime.now(UTC))
        else:
            record["delivered_to"] = [sub.name]  # nothing to send (an empty digest): done
        self.es.index(index=alerts_index(self.settings), id=doc_id, document=record,
                      refresh="wait_for" if alert.rule == "digest" else False)  # fmt: skip
        return sent

    # -- evaluation ---------------------------------------------------------------------
    def handle_update(self, update: CountUpdate) -> None:
        """Evaluate every trigger subscription on one count update."""
        self.stats["updates"] += 1
        if self.stream_time is None or update.as_of > self.stream_time:
            self.stream_time = update.as_of
        subs = [s for s in self.subscriptions if s.trigger is not None]
        if not subs:
            return
        paper = self.views.papers([update.arxiv_id]).get(update.arxiv_id)
        for sub in subs:
            trigger, query = sub.trigger, sub.query.core()
            assert trigger is not None
            if not query.matches(paper, update.arxiv_id):
                continue
            if trigger.kind in ("accounts", "velocity"):
                alerts = self._event_time_alerts(sub, query, update)
            else:
                if query.restricts_posts and not self.views.view_accounts(
                    query, update.arxiv_id, "24h", update.as_of
                ):
                    continue  # none of the posts the query counts
                rank = self.views.rank(sub, update) if trigger.kind == "top" else None
                fired = evaluate_trigger(sub.name, trigger.core(), update, None, rank)
                alerts = [fired] if fired is not None else []
            context = {**(paper or {}), "arxiv_id": update.arxiv_id}
            for alert in alerts:
                self.stats["alerts"] += 1
                self.deliver_once(sub, alert, context, {
                    "title": (paper or {}).get("title"),
                    "categories": (paper or {}).get("categories") or [],
                    "primary_category": (paper or {}).get("primary_category"),
                })  # fmt: skip

    def send_due_digests(self, stream_time: datetime | None = None) -> int:
        """Send every digest due at `stream_time` (default: the newest seen); returns how many."""
        moment = stream_time or self.stream_time
        if moment is None:
            return 0
        sent = 0
        for sub in self.subscriptions:
            every = sub.delivery.digest
            if every is None:
                continue
            due = digest_due(every, self.views.last_digest_end(sub.name), moment)
            if due is None:
                continue
            start, end = due
            rows = self.views.digest_rows(sub, start, end)
            alert = digest_alert(sub.name, start, end, rows)
            self.stats["digests"] += 1
            extra = {"papers": [r["arxiv_id"] for r in rows]}
            sent += self.deliver_once(sub, alert, {"digest": rows}, extra, send=bool(rows))
        return sent

    def _digests_now(self) -> None:
        """Digests due now; after a restart with nothing new, at the index's stream time."""
        moment = self.stream_time or stream_time_from_index(self.es, self.settings)
        self.send_due_digests(moment)

    def _with_es_retries(self, action: Any) -> None:
        """Run `action` until Elasticsearch takes it (tenacity back-off while it is busy or
        down); a request it refuses for good is counted and dropped, a stop ends the wait."""

        def attempt() -> None:
            try:
                action()
            except ApiError as error:
                if error.status_code == 429 or error.status_code >= 500:
                    raise
                # A request Elasticsearch refuses for good: retrying would block the stream.
                log.error("Elasticsearch refused a subscription request: %s", error)
                self.stats["refused"] = self.stats.get("refused", 0) + 1

        with contextlib.suppress(Stopped):  # write_batch reports the stop after the batch
            call_until_available(
                attempt, "Elasticsearch", (ApiError, TransportError), self.stop_event
            )

    def _reload_when_due(self) -> None:
        if time.monotonic() - self._loaded_at >= self.settings.subscriptions_reload_seconds:
            self._with_es_retries(self.reload)

    def write_batch(self, records: list[ConsumerRecord]) -> None:
        """Evaluate a polled batch of count updates; `Stopped` if asked to stop first (the
        batch is then not committed and comes again: delivery ids make that harmless)."""
        self._reload_when_due()
        for record in records:
            try:
                update = CountUpdate.from_json(record.value)
            except (ValueError, KeyError, TypeError) as error:
                self.stats["unreadable"] += 1
                log.error("skipping unreadable count update at %s[%d]@%d: %s",
                          record.topic, record.partition, record.offset, error)  # fmt: skip
                continue
            self._with_es_retries(lambda u=update: self.handle_update(u))
        if self.stop_event.is_set():
            raise Stopped("stopped during a batch of count updates")

    def on_idle(self) -> None:
        """Caught up with the stream: digests due at the stream time go out (checked again
        once stream time moves or the subscriptions reload)."""
        self._reload_when_due()
        if self._digests_checked != (self.stream_time, self._loaded_at):
            self._digests_checked = (self.stream_time, self._loaded_at)
            self._with_es_retries(self._digests_now)

    def run(self, idle_exit_seconds: float | None = None) -> dict[str, int]:
        """Consume count updates until stopped (or idle for `idle_exit_seconds`)."""
        ensure_alerts_index(self.es, self.settings)
        self._with_es_retries(self.reload)
        ensure_topics(self.settings)
        options = ConsumeOptions(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=f"{self.settings.namespace}-{self.settings.subscriptions_group_id}",
            topics=[self.settings.topics.counts],
            max_records=500,
            poll_seconds=0.5,
            max_poll_interval_ms=600_000,
        )
        loop = ConsumeLoop(options, self.write_batch, self.stop_event, on_idle=self.on_idle)
        loop.run(idle_exit_seconds)
        return dict(self.stats)
