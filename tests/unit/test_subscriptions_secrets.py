"""A subscriber's address never shows: not in reprs, listings, validation errors or
delivery errors (checked against a real local SMTP server, aiosmtpd)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from sinks.alert_targets import PermanentDeliveryError, RetryableDeliveryError
from sinks.subscriptions import parse_subscription
from sinks.subscriptions_email import EmailTarget, SmtpServer
from trending_arxiv.core.models import Alert

ADDRESS = "hidden.reader-91@example.org"
SUBSCRIPTION = {
    "name": "nlp",
    "query": {"categories": ["cs.CL"]},
    "delivery": {"type": "email", "to": ADDRESS, "digest": "daily"},
}
ALERT = Alert(alert_id="nlp:1602.02410:accounts_1h:2016-02-08T10", arxiv_id="1602.02410",
              rule="accounts_1h", reason="nlp: 12 distinct accounts",
              triggered_at=datetime(2016, 2, 8, 10, 5, tzinfo=UTC),
              numbers={"accounts_1h": 12.0, "posts_1h": 14.0})  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Refusing:
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        return f"550 5.1.1 <{address}>: no such user"


@pytest.fixture
def refusing_smtp() -> Iterator[int]:
    port = _free_port()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_config_reprs_and_listings_hide_the_address() -> None:
    config = parse_subscription(SUBSCRIPTION)
    assert ADDRESS not in repr(config) and ADDRESS not in str(config)
    assert ADDRESS not in str(config.redacted())
    assert config.redacted()["delivery"]["to"] == "***@example.org"
    assert config.stored()["delivery"]["to"] == ADDRESS  # stored: the deliverer needs it


def test_validation_errors_do_not_quote_the_address() -> None:
    bad = {**SUBSCRIPTION, "delivery": {**SUBSCRIPTION["delivery"], "digest": "weekly"}}
    with pytest.raises(ValueError) as caught:
        parse_subscription(bad)
    assert "digest" in str(caught.value) and ADDRESS not in str(caught.value)
    two = {**SUBSCRIPTION, "delivery": {"type": "email", "to": f"{ADDRESS}, b@x.org"}}
    with pytest.raises(ValueError) as caught:
        parse_subscription(two)
    assert ADDRESS not in str(caught.value)


def test_delivery_errors_name_the_subscription_not_the_address(
    refusing_smtp: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = parse_subscription(SUBSCRIPTION)
    assert config.delivery.to is not None
    refused = EmailTarget("nlp", config.delivery.to,
                          SmtpServer("127.0.0.1", refusing_smtp, "t@localhost"))  # fmt: skip
    with pytest.raises(PermanentDeliveryError) as permanent:
        refused.deliver(ALERT, {"title": "Exploring the Limits of Language Modeling"})
    unreachable = EmailTarget(
        "nlp", config.delivery.to, SmtpServer("127.0.0.1", _free_port(), "t@localhost", timeout=2)
    )
    with pytest.raises(RetryableDeliveryError) as retryable:  # fmt: skip
        unreachable.deliver(ALERT, None)
    for error in (permanent.value, retryable.value):
        assert "'nlp'" in str(error) and ADDRESS not in str(error)
        assert error.__cause__ is None and error.__suppress_context__
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.")]
    # aiosmtpd (the receiving server, "mail.log") logs recipients; our side must not.
    assert not any(ADDRESS in line for line in ours)
