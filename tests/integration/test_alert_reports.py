"""The watermark behind the alerts moves after each batch, not at the report timer's tick
(`streams.progress.report_now`), on the real Kafka."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.pipeline import settings_for, start_pipeline, topic_values, wait_for_quiet
from tests.integration.test_stream import send, tweet

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TAKES_OFF, LATER = "2605.07777", "2605.08888"


def test_an_alert_comes_with_the_batches_when_the_report_timer_never_ticks(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    """Three accounts post a paper; a later post on one partition, once the others are
    idle, moves every partition's promise past their moment. With the timer an hour
    away, only the reports sent after the agents' batches can carry that to the
    counting agent."""
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    processes = start_pipeline(
        namespace,
        kafka,
        es_url,
        tmp_path,
        TRENDING_ALERT_MIN_ACCOUNTS_1H="3",
        TRENDING_PROGRESS_REPORT_SECONDS="3600",
        TRENDING_WATERMARK_IDLE_SECONDS="1",
    )
    try:
        takeoff = [
            tweet(f"70{n}", f"8{n}", NOW - timedelta(minutes=10 - n), TAKES_OFF) for n in range(3)
        ]
        send(kafka, settings.topics.raw_posts, takeoff, keyed=True)
        wait_for_quiet(settings)
        assert topic_values(kafka, settings.topics.alerts) == []  # its moment not yet passed
        time.sleep(2)  # every raw partition idle: each promises what the active ones do
        send(kafka, settings.topics.raw_posts, [tweet("7100", "90", NOW, LATER)], keyed=True)
        deadline = time.monotonic() + 60
        while not (alerts := topic_values(kafka, settings.topics.alerts)):
            assert time.monotonic() < deadline, "no alert: the watermark did not move"
            time.sleep(0.5)
        assert [(a["arxiv_id"], a["rule"]) for a in alerts] == [(TAKES_OFF, "accounts_1h")]
        assert alerts[0]["triggered_at"].startswith("2026-06-01T11:52")
    finally:
        processes.stop()
