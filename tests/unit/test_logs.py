"""Repeated warnings: said once, then at most once an interval with a count."""

from __future__ import annotations

import logging

from trending_arxiv.core.logs import RepeatFilter


def _record(name: str, msg: str, *args: object, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_warning_passes_once_then_once_an_interval_with_a_count() -> None:
    now = [0.0]
    repeat = RepeatFilter(interval=60, clock=lambda: now[0])
    template = "Bootstrap connection to %s failed: %s (backoff %.2f secs)"
    moments = [tick / 8 for tick in range(200)] + [61.0, 62.0, 122.0]  # 8/s for 25 s
    passed = []
    for moment in moments:
        now[0] = moment
        record = _record("kafka.net.manager", template, "bootstrap-0", "ECONNREFUSED", moment)
        if repeat.filter(record):
            passed.append(record.getMessage())
    assert len(passed) == 3
    assert (
        passed[0] == "Bootstrap connection to bootstrap-0 failed: ECONNREFUSED (backoff 0.00 secs)"
    )
    assert passed[1].endswith("(backoff 61.00 secs) [and 199 more like it in the last 60s]")
    assert passed[2].endswith("[and 1 more like it in the last 60s]")


def test_other_messages_loggers_and_info_are_not_held_back() -> None:
    repeat = RepeatFilter(interval=60, clock=lambda: 0.0)
    assert repeat.filter(_record("kafka.net.manager", "Connection failed: %s", "x"))
    assert repeat.filter(_record("kafka.net.connection", "Connection failed: %s", "x"))
    assert repeat.filter(_record("kafka.net.manager", "Bootstrap failed: %s", "x"))
    assert not repeat.filter(_record("kafka.net.manager", "Connection failed: %s", "y"))
    for _ in range(3):
        assert repeat.filter(_record("w", "refreshed %d", 1, level=logging.INFO))
