"""Mastodon producer: a public or hashtag timeline → arXiv pre-filter → Kafka.

Streaming (server-sent events) has no resume, so every (re)connect first catches up from
the checkpointed status id through the timeline API (`min_id` pages), then streams. In
poll mode only the catch-up runs, every poll interval. The checkpoint is the highest
status id Kafka acknowledged (with everything read before it).

Stream `update`/`status.update` events are sent as received. Timeline pages are JSON
arrays; each status is sent on its own, re-encoded compactly (as Mastodon writes it).
`delete` events carry only an instance-local id, which the pipeline cannot match, so
they are counted as filtered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import httpx

from producers.checkpoint import CheckpointFile
from producers.kafka_writer import RawPostWriter
from producers.metrics import ProducerMetrics
from producers.prefilter import mentions_arxiv
from producers.settings import MastodonProducerSettings
from trending_arxiv.core.models import parse_utc

log = logging.getLogger(__name__)

PAGE_LIMIT = 40  # Mastodon's maximum for timelines
RECENT = 50_000


def iter_sse(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a server-sent-events stream; comments are heartbeats."""
    event, data = "message", list[str]()
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


class MastodonProducer:
    """See the module docstring."""

    def __init__(
        self,
        settings: MastodonProducerSettings,
        writer: RawPostWriter | None = None,
        stop: threading.Event | None = None,
        reconnect_scale: float = 1.0,
    ) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        self.metrics = writer.metrics if writer else ProducerMetrics("mastodon")
        self.writer = writer or RawPostWriter(settings, self.metrics, stop=self.stop)
        self.checkpoint = CheckpointFile(settings.checkpoint_file())
        self.reconnect_scale = reconnect_scale
        self.max_id: int | None = None
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._response: httpx.Response | None = None
        headers = {"User-Agent": "trending-arxiv"}
        token = settings.access_token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        self.http = httpx.Client(
            base_url=settings.mastodon_base_url,
            headers=headers,
            follow_redirects=True,
            timeout=httpx.Timeout(10.0, read=90.0),  # Mastodon heartbeats every ~15 s
        )

    def request_stop(self) -> None:
        self.stop.set()
        response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:
                log.debug("closing the stream response raised", exc_info=True)

    # -- endpoints --

    def _stream_path(self) -> tuple[str, dict[str, str]]:
        if self.settings.mastodon_stream == "hashtag":
            return "/api/v1/streaming/hashtag", {"tag": self.settings.mastodon_hashtag}
        return "/api/v1/streaming/public", {}

    def _timeline_path(self) -> str:
        if self.settings.mastodon_stream == "hashtag":
            return f"/api/v1/timelines/tag/{self.settings.mastodon_hashtag}"
        return "/api/v1/timelines/public"

    # -- checkpoint --

    def saved_id(self) -> int | None:
        doc = self.checkpoint.load()
        return int(doc["max_id"]) if doc and doc.get("max_id") else None

    def save(self) -> None:
        committed = self.writer.tracker.committed()
        if committed is not None:
            self.checkpoint.save({"max_id": str(committed)})

    # -- statuses --

    def handle_status(self, raw: bytes) -> None:
        """Send one status if it may link arXiv; track its id either way."""
        try:
            doc: dict[str, Any] = json.loads(raw)
            status_id = int(doc["id"])
        except (ValueError, KeyError, TypeError):
            self.metrics.add_error("bad_status")
            log.warning("not a Mastodon status: %r", raw[:200])
            return
        identity = f"{status_id}|{doc.get('edited_at')}"
        if identity in self._recent:
            return
        self._recent[identity] = None
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        self.max_id = max(self.max_id or status_id, status_id)
        self.metrics.add_received()
        if isinstance(doc.get("created_at"), str):
            with contextlib.suppress(ValueError):
                self.metrics.set_event_time(parse_utc(doc["created_at"]).timestamp())
        if mentions_arxiv(raw):
            self.writer.send(
                raw, str(doc.get("uri") or status_id), "mastodon", position=self.max_id
            )
        else:
            self.metrics.add_filtered()
            self.writer.skip(self.max_id)

    def catch_up(self) -> int:
        """Read the timeline forward from the last id seen; returns statuses read."""
        since = self.max_id if self.max_id is not None else self.saved_id()
        count = 0
        while not self.stop.is_set():
            params: dict[str, Any] = {"limit": PAGE_LIMIT}
            if since is not None:
                params["min_id"] = str(since)
            response = self.http.get(self._timeline_path(), params=params)
            if response.status_code == 429:
                reset = response.headers.get("x-ratelimit-reset")
                wait = 60.0
                if reset:
                    with contextlib.suppress(ValueError):
                        wait = max(1.0, parse_utc(reset).timestamp() - time.time())
                self.metrics.add_error("rate_limited")
                log.warning("Mastodon rate limit; waiting %.0fs", wait)
                if self.stop.wait(wait * self.reconnect_scale):
                    break
                continue
            response.raise_for_status()
            statuses = response.json()
            if not isinstance(statuses, list) or not statuses:
                break
            for status in sorted(statuses, key=lambda s: int(s["id"])):
                raw = json.dumps(status, ensure_ascii=False, separators=(",", ":")).encode()
                self.handle_status(raw)
                count += 1
            if since is None:
                break  # first run: start from "now", not from the beginning of time
            since = max(int(s["id"]) for s in statuses)
        return count

    def stream_once(self) -> None:
        """One streaming connection, until it ends or we stop."""
        path, params = self._stream_path()
        with self.http.stream("GET", path, params=params) as response:
            self._response = response
            try:
                if self.stop.is_set():
                    # `request_stop` ran before the response was ours to close: its
                    # heartbeats yield no event, so the loop below would never see it.
                    return
                response.raise_for_status()
                log.info("streaming %s from %s", path, self.settings.mastodon_base_url)
                last_save = time.monotonic()
                for event, data in iter_sse(response.iter_lines()):
                    if event in ("update", "status.update"):
                        self.handle_status(data.encode("utf-8"))
                    elif event == "delete":
                        self.metrics.add_filtered()
                    now = time.monotonic()
                    if now - last_save >= 1.0:
                        last_save = now
                        self.save()
                        self.metrics.maybe_log(self.settings.metrics_log_seconds)
                    if self.stop.is_set():
                        return
            finally:
                self._response = None

    def run(self) -> None:
        """Catch up and stream (or poll) until stopped; flushes and checkpoints on exit."""
        failures = 0
        try:
            self.writer.connect()
            while not self.stop.is_set():
                try:
                    self.catch_up()
                    self.writer.flush(timeout=30.0)
                    self.save()
                    if self.settings.mastodon_mode == "poll":
                        if self.stop.wait(self.settings.mastodon_poll_interval_seconds):
                            break
                        continue
                    self.stream_once()
                    failures = 0
                except Exception as exc:
                    if self.stop.is_set():
                        break
                    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (
                        401,
                        403,
                        404,
                    ):
                        raise RuntimeError(
                            f"Mastodon refused {exc.request.url.path} "
                            f"(HTTP {exc.response.status_code}); check the instance URL, "
                            "the hashtag and the access token"
                        ) from None
                    if not isinstance(exc, httpx.HTTPError):
                        raise
                    self.metrics.add_error("connection")
                    failures += 1
                    wait = min(
                        0.5 * 2 ** (failures - 1), self.settings.mastodon_reconnect_max_seconds
                    )
                    log.warning(
                        "Mastodon connection lost (%s); retry in %.1fs", type(exc).__name__, wait
                    )
                    if self.stop.wait(wait * self.reconnect_scale):
                        break
                    continue
                # The stream ended cleanly; reconnect (after catching up) at once.
                self.writer.flush(timeout=30.0)
                self.save()
        finally:
            self.writer.close(timeout=30.0)
            self.save()
            self.http.close()
