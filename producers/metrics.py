"""Producer counters: kept locally (for summaries and logs) and exported to Prometheus."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge, start_http_server

log = logging.getLogger(__name__)

_RECEIVED = Counter("trending_producer_received", "Payloads read from the source", ["source"])
_SENT = Counter("trending_producer_sent", "Payloads acknowledged by Kafka", ["source"])
_FILTERED = Counter("trending_producer_filtered", "Payloads dropped by the pre-filter", ["source"])
_ERRORS = Counter("trending_producer_errors", "Source or Kafka errors", ["source", "kind"])
_LAG = Gauge("trending_producer_lag_seconds", "Now minus the newest event's time", ["source"])


@dataclass
class ProducerMetrics:
    """Counts of one producer; thread-safe (Kafka acks arrive on the I/O thread)."""

    source: str
    received: int = 0
    sent: int = 0
    filtered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lag_seconds: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _last_log: float = field(default_factory=time.monotonic, repr=False)
    # This source's Prometheus children, looked up once: `labels()` a post was ~4 µs of
    # the replay producer's ~25.
    _received: Any = field(init=False, repr=False)
    _sent: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._received = _RECEIVED.labels(self.source)
        self._sent = _SENT.labels(self.source)

    def add_received(self, n: int = 1) -> None:
        with self._lock:
            self.received += n
        self._received.inc(n)

    def add_sent(self, n: int = 1) -> None:
        with self._lock:
            self.sent += n
        self._sent.inc(n)

    def add_filtered(self, n: int = 1) -> None:
        with self._lock:
            self.filtered += n
        _FILTERED.labels(self.source).inc(n)

    def add_error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1
        _ERRORS.labels(self.source, kind).inc()

    def set_event_time(self, epoch_seconds: float) -> None:
        lag = max(0.0, time.time() - epoch_seconds)
        with self._lock:
            self.lag_seconds = lag
        _LAG.labels(self.source).set(lag)

    def summary(self) -> str:
        with self._lock:
            errors = ", ".join(f"{k}={v}" for k, v in sorted(self.errors.items())) or "none"
            lag = "n/a" if self.lag_seconds is None else f"{self.lag_seconds:.1f}s"
            return (
                f"{self.source}: received={self.received} sent={self.sent} "
                f"filtered={self.filtered} errors=({errors}) lag={lag}"
            )

    def maybe_log(self, every_seconds: float) -> None:
        """Log the counters at most every `every_seconds`."""
        now = time.monotonic()
        if now - self._last_log >= every_seconds:
            self._last_log = now
            log.info("%s", self.summary())


def serve_metrics(port: int | None, addr: str = "127.0.0.1") -> None:
    """Expose the Prometheus endpoint on `addr`:`port` (no-op for None)."""
    if port:
        start_http_server(port, addr=addr)
