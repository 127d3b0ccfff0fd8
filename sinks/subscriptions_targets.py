"""Where a subscription's alerts and digests go: the alert targets, plus digest bodies.

Webhook, Slack and stdout reuse `sinks.alert_targets` (a digest travels as an `Alert`
with `rule="digest"` and its papers beside it); e-mail is `sinks.subscriptions_email`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from sinks.alert_targets import SlackTarget, StdoutTarget, Target, WebhookTarget
from sinks.subscriptions import SubscriptionConfig
from sinks.subscriptions_email import EmailTarget, SmtpServer
from trending_arxiv.core.models import Alert, to_utc_iso


def digest_payload(alert: Alert, papers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "digest_id": alert.alert_id,
        "subscription": alert.reason.split(":", 1)[0],
        "start": to_utc_iso(datetime.fromtimestamp(alert.numbers["start"], UTC)),
        "end": to_utc_iso(alert.triggered_at),
        "papers": papers,
    }


class DigestWebhookTarget(WebhookTarget):
    def body(self, alert: Alert, paper: dict[str, Any] | None) -> dict[str, Any]:
        return digest_payload(alert, (paper or {}).get("digest") or [])


class DigestSlackTarget(SlackTarget):
    def body(self, alert: Alert, paper: dict[str, Any] | None) -> dict[str, Any]:
        lines = [f"*{alert.reason}*"]
        for rank, row in enumerate((paper or {}).get("digest") or [], start=1):
            url = row.get("abs_url") or f"https://arxiv.org/abs/{row['arxiv_id']}"
            title = str(row.get("title") or row["arxiv_id"]).replace("<", "&lt;")
            lines.append(f"{rank}. <{url}|{title}> ({row.get('accounts', 0)} accounts)")
        return {"text": "\n".join(lines)}


class DigestStdoutTarget(StdoutTarget):
    def deliver(self, alert: Alert, paper: dict[str, Any] | None) -> None:
        line = json.dumps(digest_payload(alert, (paper or {}).get("digest") or []))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def build_target(sub: SubscriptionConfig, smtp: SmtpServer, client: httpx.Client) -> Target:
    """The target of a subscription's delivery (ValueError: an empty `url_env`)."""
    delivery, digest = sub.delivery, sub.delivery.digest is not None
    if delivery.type == "email":
        assert delivery.to is not None
        return EmailTarget(sub.name, delivery.to, smtp)
    if delivery.type == "stdout":
        return DigestStdoutTarget(name=sub.name) if digest else StdoutTarget(name=sub.name)
    url = delivery.resolved_url(sub.name)
    if delivery.type == "slack":
        kind: type[WebhookTarget] = DigestSlackTarget if digest else SlackTarget
    else:
        kind = DigestWebhookTarget if digest else WebhookTarget
    return kind(sub.name, url, client)
