"""Bluesky producer: Jetstream websocket → pre-filter → Kafka, resumable by cursor.

The cursor is Jetstream's `time_us`. The checkpoint keeps the highest `time_us` whose
event (and every event read before it) Kafka acknowledged or the pre-filter dropped. On
(re)connect we ask for `cursor = checkpoint - rewind` because `time_us` is not strictly
monotonic across events; duplicates this causes within one process are dropped here, and
across restarts by the stream worker (by post id).

Compression: Jetstream's `compress=true` sends zstd frames made with its own dictionary
(published in the Jetstream repository, not on PyPI). Give its path in
`TRENDING_BLUESKY_ZSTD_DICTIONARY` to use it; compression is off by default.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import zstandard
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect

from producers.checkpoint import CheckpointFile
from producers.kafka_writer import RawPostWriter
from producers.keys import key_of_document
from producers.metrics import ProducerMetrics
from producers.prefilter import decode_jetstream, jetstream_event_passes
from producers.settings import BlueskyProducerSettings

log = logging.getLogger(__name__)

RECENT_EVENTS = 200_000


class BlueskyConfigError(RuntimeError):
    """A configuration the producer cannot run with."""


def subscribe_url(base: str, collections: list[str], cursor: int | None, compress: bool) -> str:
    """The subscribe URL with `wantedCollections`, `cursor` and `compress` set."""
    parts = urlsplit(base)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query)
        if k not in ("wantedCollections", "cursor", "compress")
    ]
    query += [("wantedCollections", c) for c in collections]
    if cursor is not None:
        query.append(("cursor", str(cursor)))
    if compress:
        query.append(("compress", "true"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def event_identity(doc: dict[str, Any]) -> str:
    """Identity of one Jetstream event (a create and its delete differ)."""
    commit = doc.get("commit") or {}
    return "|".join(
        str(x)
        for x in (
            doc.get("did"),
            doc.get("time_us"),
            doc.get("kind"),
            commit.get("operation"),
            commit.get("collection"),
            commit.get("rkey"),
        )
    )


class BlueskyProducer:
    """Reads Jetstream until stopped, failing over between the configured hosts."""

    def __init__(
        self,
        settings: BlueskyProducerSettings,
        writer: RawPostWriter | None = None,
        stop: threading.Event | None = None,
        reconnect_scale: float = 1.0,
    ) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        self.metrics = writer.metrics if writer else ProducerMetrics("bluesky")
        self.writer = writer or RawPostWriter(settings, self.metrics, stop=self.stop)
        self.checkpoint = CheckpointFile(settings.cursor_path())
        self.reconnect_scale = reconnect_scale
        self.max_time_us: int | None = None
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._decompressor: zstandard.ZstdDecompressor | None = None
        if settings.bluesky_compress:
            path = settings.bluesky_zstd_dictionary
            if path is None:
                raise BlueskyConfigError(
                    "bluesky_compress needs TRENDING_BLUESKY_ZSTD_DICTIONARY: the path of "
                    "Jetstream's zstd dictionary (pkg/models/zstd_dictionary in its repo)"
                )
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise BlueskyConfigError(f"cannot read zstd dictionary {path}: {exc}") from None
            self._decompressor = zstandard.ZstdDecompressor(
                dict_data=zstandard.ZstdCompressionDict(data)
            )

    def request_stop(self) -> None:
        self.stop.set()

    # -- cursor --

    def saved_cursor(self) -> int | None:
        doc = self.checkpoint.load()
        if not doc or doc.get("time_us") is None:
            return None
        return int(doc["time_us"])

    def save_cursor(self) -> None:
        committed = self.writer.tracker.committed()
        if committed is not None:
            self.checkpoint.save({"time_us": int(committed)})

    def _resume_cursor(self) -> int | None:
        latest = self.max_time_us if self.max_time_us is not None else self.saved_cursor()
        if latest is None:
            return None
        return latest - int(self.settings.bluesky_rewind_seconds * 1_000_000)

    # -- events --

    def _decode(self, message: str | bytes) -> bytes:
        if isinstance(message, str):
            return message.encode("utf-8")
        if self._decompressor is not None:
            return self._decompressor.decompressobj().decompress(message)
        return message

    def handle(self, message: str | bytes) -> None:
        """Pre-filter one event and send it (or mark it read) with its cursor position."""
        try:
            raw = self._decode(message)
        except zstandard.ZstdError:
            self.metrics.add_error("bad_frame")
            log.warning("could not decompress a Jetstream frame (%d bytes)", len(message))
            return
        doc = decode_jetstream(raw)
        if doc is None or not isinstance(doc.get("time_us"), int):
            self.metrics.add_error("bad_event")
            log.warning("Jetstream sent something that is not an event: %r", raw[:200])
            return
        time_us: int = doc["time_us"]
        identity = event_identity(doc)
        if identity in self._recent:
            return  # seen before this reconnect's rewind
        self._recent[identity] = None
        if len(self._recent) > RECENT_EVENTS:
            self._recent.popitem(last=False)
        self.max_time_us = max(self.max_time_us or time_us, time_us)
        self.metrics.add_received()
        self.metrics.set_event_time(time_us / 1e6)
        if jetstream_event_passes(raw, doc):
            key = key_of_document(doc).key
            self.writer.send(raw, key, "bluesky", position=self.max_time_us)
        else:
            self.metrics.add_filtered()
            self.writer.skip(self.max_time_us)

    # -- connection loop --

    def run(self) -> None:
        """Consume until stopped; flushes and saves the cursor on the way out."""
        urls = self.settings.bluesky_jetstream_urls
        host = 0
        failures = 0
        last_save = time.monotonic()
        try:
            self.writer.connect()
            while not self.stop.is_set():
                url = subscribe_url(
                    urls[host],
                    self.settings.bluesky_collections,
                    self._resume_cursor(),
                    self._decompressor is not None,
                )
                try:
                    with connect(url, open_timeout=10, max_size=2**22) as ws:
                        log.info("connected to %s", urls[host])
                        failures = 0
                        while not self.stop.is_set():
                            try:
                                message = ws.recv(timeout=1.0)
                            except TimeoutError:
                                message = None
                            if message is not None:
                                self.handle(message)
                            now = time.monotonic()
                            if now - last_save >= 1.0:
                                last_save = now
                                self.save_cursor()
                                self.metrics.maybe_log(self.settings.metrics_log_seconds)
                except (ConnectionClosed, InvalidHandshake, InvalidURI, OSError) as exc:
                    self.metrics.add_error("connection")
                    failures += 1
                    next_host = (host + 1) % len(urls)
                    # Wait only once every host has failed in a row.
                    rounds = (failures - 1) // len(urls)
                    wait = (
                        0.0
                        if failures % len(urls)
                        else min(0.5 * 2**rounds, self.settings.bluesky_reconnect_max_seconds)
                    )
                    log.warning(
                        "Jetstream %s failed (%s); next: %s in %.1fs",
                        urls[host], type(exc).__name__, urls[next_host], wait,
                    )  # fmt: skip
                    host = next_host
                    self.writer.flush(timeout=10.0)
                    self.save_cursor()
                    if self.stop.wait(wait * self.reconnect_scale):
                        break
        finally:
            self.writer.close(timeout=30.0)
            self.save_cursor()
