"""Repeated warnings said once, then at most once a minute (a logging filter).

Client libraries log the same trouble over and over: kafka-python four lines per failed
connection attempt while Kafka is down (~8 a second), a warning each time a consumer is
built. The first of each is what a reader needs; after it, one line a minute says the
trouble goes on and how many times it was seen meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: How many distinct messages are remembered (the oldest are forgotten beyond that).
MAX_TRACKED = 1000


class RepeatFilter(logging.Filter):
    """Lets a record of `level` or above through the first time its (logger, message
    template) is seen, then at most once per `interval` seconds, noting how many were held
    back. Records below `level` always pass. Attach it to handlers
    (`trending_arxiv.runtime.configure_logging` does)."""

    def __init__(
        self,
        interval: float = 60.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.level = level
        self._clock = clock
        self._lock = threading.Lock()
        # (logger, template) -> [moment last let through, records held back since]
        self._seen: dict[tuple[str, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level:
            return True
        key = (record.name, str(record.msg))
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.interval:
                entry[1] += 1
                return False
            held = int(entry[1]) if entry else 0
            self._seen.pop(key, None)
            self._seen[key] = [now, 0]
            if len(self._seen) > MAX_TRACKED:
                del self._seen[next(iter(self._seen))]
        if held:
            record.msg = f"{record.msg} [and {held} more like it in the last {self.interval:.0f}s]"
        return True
