"""The Kafka writer waits for an unreachable Kafka instead of failing or dropping."""

from __future__ import annotations

import socket
import threading

import pytest

from producers.kafka_writer import RawPostWriter, WriterStopped
from producers.metrics import ProducerMetrics
from producers.settings import ProducerSettings


def test_unreachable_kafka_is_waited_for_until_stopped() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = ProducerSettings(kafka_bootstrap_servers=f"127.0.0.1:{port}")
    stop = threading.Event()
    metrics = ProducerMetrics("test")
    writer = RawPostWriter(settings, metrics, stop=stop)
    outcome: list[BaseException] = []

    def connect() -> None:
        try:
            writer.connect()
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=connect)
    thread.start()
    # Still waiting (not failed) after the first attempt gave up.
    thread.join(timeout=7)
    assert thread.is_alive() and not outcome
    assert metrics.errors.get("kafka_unavailable", 0) >= 1
    stop.set()
    thread.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], WriterStopped)
    with pytest.raises(WriterStopped):
        writer.connect()  # a stopped writer does not wait again
