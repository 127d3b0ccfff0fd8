"""Where alerts go: a generic JSON webhook, a Slack-compatible incoming webhook, stdout.

Each target's `deliver` raises `RetryableDeliveryError` for failures worth retrying
(network errors, timeouts, 429 and 5xx answers) and `PermanentDeliveryError` for the
rest (other 4xx: the URL or payload is wrong, retrying won't help).
`deliver_with_retries` retries with exponential back-off and jitter (tenacity).
Webhook URLs often carry a secret (Slack's do), so they are never logged: targets are
named in logs and errors by their configured name.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import httpx
from pydantic import SecretStr
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from trending_arxiv.core.models import Alert, to_utc_iso


def secret_url(url: SecretStr | None, url_env: str | None, owner: str) -> SecretStr:
    """A target's URL as configured: given (`url`) or read from the variable `url_env`
    (secrets stay out of rule and subscription files); `owner` names it in the error."""
    if url is not None:
        return url
    value = os.environ.get(url_env or "")
    if not value:
        raise ValueError(f"{owner}: environment variable {url_env} is empty")
    return SecretStr(value)


class DeliveryError(Exception):
    """An alert could not be delivered to a target."""


class RetryableDeliveryError(DeliveryError):
    """A failure that may go away (network, timeout, 429, 5xx)."""


class PermanentDeliveryError(DeliveryError):
    """A failure retrying won't fix (a 4xx other than 408/429)."""


def alert_payload(alert: Alert, paper: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON body of the generic webhook: the alert plus what we know of the paper."""
    paper = paper or {}
    return {
        "alert_id": alert.alert_id,
        "arxiv_id": alert.arxiv_id,
        "rule": alert.rule,
        "reason": alert.reason,
        "triggered_at": to_utc_iso(alert.triggered_at),
        "numbers": dict(alert.numbers),
        "paper": {
            "title": paper.get("title"),
            "authors": paper.get("authors") or [],
            "categories": paper.get("categories") or [],
            "abs_url": paper.get("abs_url") or f"https://arxiv.org/abs/{alert.arxiv_id}",
            "pdf_url": paper.get("pdf_url") or f"https://arxiv.org/pdf/{alert.arxiv_id}",
        },
    }


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats &, < and > as control characters; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(alert: Alert, paper: dict[str, Any] | None) -> str:
    """One Slack message: linked title, id and categories, then the reason."""
    paper = paper or {}
    url = paper.get("abs_url") or f"https://arxiv.org/abs/{alert.arxiv_id}"
    title = _slack_escape(str(paper.get("title") or f"arXiv:{alert.arxiv_id}"))
    categories = ", ".join(paper.get("categories") or [])
    where = f"arXiv:{alert.arxiv_id}" + (f", {_slack_escape(categories)}" if categories else "")
    return f":chart_with_upwards_trend: *<{url}|{title}>* ({where})\n{_slack_escape(alert.reason)}"


class Target(Protocol):
    name: str

    def deliver(self, alert: Alert, paper: dict[str, Any] | None) -> None: ...


@dataclass
class WebhookTarget:
    """POSTs `alert_payload` as JSON to a URL."""

    name: str
    url: SecretStr
    client: httpx.Client
    headers: dict[str, str] = field(default_factory=dict)

    def body(self, alert: Alert, paper: dict[str, Any] | None) -> dict[str, Any]:
        return alert_payload(alert, paper)

    def deliver(self, alert: Alert, paper: dict[str, Any] | None) -> None:
        try:
            response = self.client.post(
                self.url.get_secret_value(),
                json=self.body(alert, paper),
                headers={"Idempotency-Key": alert.alert_id, **self.headers},
            )
        except httpx.HTTPError as error:
            # The exception text may contain the URL; report only its kind.
            raise RetryableDeliveryError(
                f"target {self.name!r}: {type(error).__name__} while posting"
            ) from None
        if response.is_success:
            return
        message = f"target {self.name!r} answered HTTP {response.status_code}"
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise RetryableDeliveryError(message)
        raise PermanentDeliveryError(message)


@dataclass
class SlackTarget(WebhookTarget):
    """A Slack-compatible incoming webhook: `{"text": ...}`."""

    def body(self, alert: Alert, paper: dict[str, Any] | None) -> dict[str, Any]:
        return {"text": slack_text(alert, paper)}


@dataclass
class StdoutTarget:
    """One JSON line per alert on standard output (or any text stream)."""

    name: str = "stdout"
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, alert: Alert, paper: dict[str, Any] | None) -> None:
        line = json.dumps(alert_payload(alert, paper), ensure_ascii=False)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def deliver_with_retries(
    target: Target,
    alert: Alert,
    paper: dict[str, Any] | None,
    max_seconds: float = 60.0,
    initial_wait: float = 0.5,
) -> int:
    """Deliver, retrying retryable failures with back-off for up to `max_seconds`.

    Returns the number of attempts; raises the last DeliveryError when giving up.
    """
    retrying = Retrying(
        retry=retry_if_exception_type(RetryableDeliveryError),
        wait=wait_exponential_jitter(initial=initial_wait, max=30.0, jitter=initial_wait),
        stop=stop_after_delay(max_seconds),
        reraise=True,
    )
    attempts = 0
    for attempt in retrying:
        with attempt:
            attempts += 1
            target.deliver(alert, paper)
    return attempts
