"""Baseline: a Faust agent that reads a topic in batches and does nothing else.

Faust's own per-event cost (aiokafka fetch thread, conductor, stream, acks), with the
worker's event loop and batch size, on the same topic and machine as the worker. Run
as its own process by bench_worker.py; prints one JSON line:

    python -m bench.faust_baseline TOPIC EXPECTED_RECORDS [LOGLEVEL]

LOGLEVEL is `info` by default, as the worker runs. At `warning` Faust sets the root
logger to DEBUG (mode's logging set-up), so every `log.debug` on the consumer and
producer paths builds a record: the baseline measured before ran so (see the README).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from trending_arxiv.settings import WorkerSettings


def main() -> None:
    topic_name, expected = sys.argv[1], int(sys.argv[2])
    loglevel = sys.argv[3] if len(sys.argv) > 3 else "info"
    settings = WorkerSettings()
    if settings.worker_event_loop != "aio":
        import mode.loop

        mode.loop.use(settings.worker_event_loop)
    import faust
    from faust.worker import Worker

    app = faust.App(
        f"bench-faust-baseline-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        logging_config=None,
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")  # fmt: skip
    seen: dict[str, Any] = {"records": 0, "wall": None, "cpu": None}

    @app.agent(topic)
    async def read(stream: Any) -> AsyncIterator[None]:
        batches = stream.take_events(settings.batch_size, within=settings.batch_timeout_seconds)
        async for events in batches:
            if seen["wall"] is None:  # start at the first batch: start-up excluded
                seen["wall"], seen["cpu"] = time.monotonic(), time.process_time()
            seen["records"] += len(events)
            if seen["records"] >= expected:
                wall = time.monotonic() - seen["wall"]
                cpu = time.process_time() - seen["cpu"]
                print(json.dumps({
                    "records": seen["records"],
                    "seconds": round(wall, 3),
                    "posts_per_second": round(seen["records"] / wall, 1),
                    "cpu_us_per_record": round(cpu / seen["records"] * 1e6, 1),
                    "event_loop": settings.worker_event_loop,
                    "loglevel": loglevel,
                    "root_logger_level": logging.getLogger().getEffectiveLevel(),
                }), flush=True)  # fmt: skip
                os._exit(0)  # the measurement is taken; skip Faust's shutdown
            yield None

    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
