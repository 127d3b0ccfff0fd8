"""Alert delivery without Kafka: rules, message formats, and the HTTP targets against a
local receiver on 127.0.0.1 (retries, permanent failures, secrets kept out of errors)."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from sinks.alert_targets import (
    PermanentDeliveryError,
    RetryableDeliveryError,
    SlackTarget,
    StdoutTarget,
    WebhookTarget,
    alert_payload,
    deliver_with_retries,
    slack_text,
)
from sinks.alerts import AlertSettings, RuleConfig, load_rules, rule_matches, rules_from_settings
from tests.fakes.http import FakeHttpServer, Reply, Request
from trending_arxiv.core.models import Alert

ALERT = Alert(
    alert_id="1602.02410:accounts_1h:2016-02-08T10",
    arxiv_id="1602.02410",
    rule="accounts_1h",
    reason="12 distinct accounts posted about 1602.02410 within an hour (threshold 10)",
    triggered_at=datetime(2016, 2, 8, 10, 30, tzinfo=UTC),
    numbers={"posts_1h": 14.0, "accounts_1h": 12.0, "posts_24h": 20.0, "velocity": 7.0,
             "trend_score": 3.5},
)  # fmt: skip
PAPER = {"title": "Exploring <the> Limits & More", "categories": ["cs.CL", "cs.LG"],
         "abs_url": "https://arxiv.org/abs/1602.02410", "authors": ["R. J."]}  # fmt: skip


class Receiver(FakeHttpServer):
    """Answers each POST with the next status of a script (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        super().__init__()
        self.statuses = list(statuses or [])
        self.lock = threading.Lock()

    def handle(self, request: Request, reply: Reply) -> None:
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 200
        reply.send_json(status, {"ok": status == 200})


def test_payload_and_slack_text() -> None:
    payload = alert_payload(ALERT, PAPER)
    assert payload["alert_id"] == ALERT.alert_id
    assert payload["triggered_at"] == "2016-02-08T10:30:00Z"
    assert payload["paper"]["categories"] == ["cs.CL", "cs.LG"]
    text = slack_text(ALERT, PAPER)
    assert "<https://arxiv.org/abs/1602.02410|Exploring &lt;the&gt; Limits &amp; More>" in text
    assert "arXiv:1602.02410, cs.CL, cs.LG" in text and ALERT.reason in text
    assert "arxiv.org/abs/1602.02410" in slack_text(ALERT, None)


def test_rules_match_on_rule_thresholds_categories_and_users() -> None:
    def nobody(user: str) -> bool:
        return False

    assert rule_matches(RuleConfig(name="a", targets=["t"]), ALERT, PAPER, nobody)
    assert rule_matches(RuleConfig(name="a", targets=["t"], categories=["cs.*"]), ALERT, PAPER,
                        nobody)  # fmt: skip
    assert not rule_matches(RuleConfig(name="a", targets=["t"], categories=["math.*"]), ALERT,
                            PAPER, nobody)  # fmt: skip
    assert not rule_matches(RuleConfig(name="a", targets=["t"], categories=["cs.CL"]), ALERT,
                            None, nobody)  # fmt: skip
    assert rule_matches(RuleConfig(name="a", targets=["t"], min={"accounts_1h": 12}), ALERT,
                        PAPER, nobody)  # fmt: skip
    assert not rule_matches(RuleConfig(name="a", targets=["t"], min={"accounts_1h": 13}), ALERT,
                            PAPER, nobody)  # fmt: skip
    assert not rule_matches(RuleConfig(name="a", targets=["t"], alert_rules=["velocity"]), ALERT,
                            PAPER, nobody)  # fmt: skip
    users = RuleConfig(name="a", targets=["t"], users=["smerity", "karpathy"])
    assert not rule_matches(users, ALERT, PAPER, nobody)
    assert rule_matches(users, ALERT, PAPER, lambda user: user == "karpathy")


def test_rules_file_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "rules.yaml"
    good.write_text(
        "targets:\n"
        "  - {name: team, type: webhook, url: 'http://127.0.0.1:9/hook'}\n"
        "  - {name: slack, type: slack, url_env: TEST_SLACK_URL}\n"
        "  - {name: console, type: stdout}\n"
        "rules:\n"
        "  - {name: hot, targets: [team, console], min: {accounts_1h: 20}}\n"
        "  - {name: nlp, targets: [slack], categories: [cs.CL]}\n"
    )
    config = load_rules(good)
    assert [r.name for r in config.rules] == ["hot", "nlp"]
    monkeypatch.setenv("TEST_SLACK_URL", "https://hooks.example/T000/B000/secret")
    assert config.targets[1].resolved_url().get_secret_value().endswith("/secret")
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [{name: a, type: stdout}]\nrules: [{name: r, targets: [b]}]\n")
    with pytest.raises(ValueError, match="unknown targets: b"):
        load_rules(bad)
    bad.write_text("targets: [{name: a, type: webhook}]\nrules: [{name: r, targets: [a]}]\n")
    with pytest.raises(ValueError, match="needs url"):
        load_rules(bad)
    bad.write_text("targets: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_rules(bad)
    with pytest.raises(ValueError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


def test_targets_from_environment_without_rules_file() -> None:
    settings = AlertSettings(
        alerts_webhook_url=SecretStr("http://127.0.0.1:9/a"), alerts_stdout=True
    )
    config = rules_from_settings(settings)
    assert [t.name for t in config.targets] == ["webhook", "stdout"]
    assert config.rules[0].targets == ["webhook", "stdout"]
    assert [t.name for t in rules_from_settings(AlertSettings()).targets] == ["stdout"]


def test_webhook_and_slack_post_the_right_bodies() -> None:
    with Receiver() as receiver, httpx.Client() as client:
        WebhookTarget("hook", SecretStr(receiver.url + "/hook"), client,
                      {"X-Token": "t"}).deliver(ALERT, PAPER)  # fmt: skip
        SlackTarget("slack", SecretStr(receiver.url + "/slack"), client).deliver(ALERT, PAPER)
    hook, slack = receiver.requests_to("/hook")[0], receiver.requests_to("/slack")[0]
    assert hook.method == "POST" and hook.json() == alert_payload(ALERT, PAPER)
    assert hook.headers["X-Token"] == "t" and hook.headers["Idempotency-Key"] == ALERT.alert_id
    assert hook.headers["Content-Type"] == "application/json"
    assert slack.json() == {"text": slack_text(ALERT, PAPER)}


def test_retries_with_backoff_until_delivered() -> None:
    with Receiver([503, 429, 500]) as receiver, httpx.Client() as client:
        target = WebhookTarget("hook", SecretStr(receiver.url + "/hook"), client)
        attempts = deliver_with_retries(target, ALERT, PAPER, max_seconds=10, initial_wait=0.01)
    assert attempts == 4
    assert len(receiver.requests_to("/hook")) == 4


def test_permanent_failure_is_not_retried_and_hides_the_url() -> None:
    with Receiver([404]) as receiver, httpx.Client() as client:
        url = receiver.url + "/T000/secret-token"
        target = WebhookTarget("hook", SecretStr(url), client)
        with pytest.raises(PermanentDeliveryError) as failure:
            deliver_with_retries(target, ALERT, PAPER, max_seconds=10, initial_wait=0.01)
    assert len(receiver.requests) == 1
    assert "404" in str(failure.value) and "secret-token" not in str(failure.value)


def test_unreachable_target_gives_up_after_the_budget() -> None:
    with Receiver() as receiver:
        url = receiver.url + "/secret-token"
    with httpx.Client(timeout=1) as client:  # receiver stopped: connection refused
        target = WebhookTarget("hook", SecretStr(url), client)
        with pytest.raises(RetryableDeliveryError) as failure:
            deliver_with_retries(target, ALERT, PAPER, max_seconds=0.3, initial_wait=0.05)
    assert "secret-token" not in str(failure.value) and "hook" in str(failure.value)


def test_stdout_target_writes_one_json_line() -> None:
    stream = io.StringIO()
    StdoutTarget(stream=stream).deliver(ALERT, PAPER)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["alert_id"] == ALERT.alert_id
