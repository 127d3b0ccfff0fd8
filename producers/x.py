"""X (Twitter) API v2 producer: filtered stream, recent-search polling, follow lists.

Library choices:
- REST calls (recent search, user lookup, follow lists, stream rules) go through tweepy's
  clients on a configurable host (`producers.x_api`);
  `return_type=requests.Response` keeps the raw body, which we send unmodified.
- The stream itself is read with httpx, not tweepy's `StreamingClient.filter`: tweepy's
  reconnect loop sleeps a fixed schedule we cannot scale, cannot be stopped while it
  waits, and hides partial lines. `StreamBackoff` implements X's documented schedule.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import requests
import tweepy

from producers.checkpoint import CheckpointFile
from producers.kafka_writer import RawPostWriter
from producers.keys import key_of
from producers.metrics import ProducerMetrics
from producers.settings import XProducerSettings
from producers.x_api import (
    EXPANSIONS,
    RULE_TAG_PREFIX,
    TWEET_FIELDS,
    USER_FIELDS,
    StreamBackoff,
    XApiClient,
    XConfigError,
    XRulesClient,
    arxiv_url_clause,
    batch_from_rules,
    created_at_epoch,
    rate_limit_wait,
    rule_tag,
)
from trending_arxiv.core.models import to_utc_iso

log = logging.getLogger(__name__)
T = TypeVar("T")


class XProducer:
    """Runs one of the X modes and writes every payload to Kafka."""

    def __init__(
        self,
        settings: XProducerSettings,
        writer: RawPostWriter | None = None,
        stop: threading.Event | None = None,
        backoff: StreamBackoff | None = None,
        stream_read_timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        self.metrics = writer.metrics if writer else ProducerMetrics("x")
        self.writer = writer or RawPostWriter(settings, self.metrics, stop=self.stop)
        self.backoff = backoff or StreamBackoff()
        # X sends a keep-alive every 20 s; no byte for longer means a stalled connection.
        self.stream_read_timeout = stream_read_timeout
        token = settings.bearer_token().get_secret_value()
        self._auth = {"Authorization": f"Bearer {token}"}
        self.api = XApiClient(token, settings.x_api_base_url)
        self.rules_api = XRulesClient(token, settings.x_api_base_url)
        self.checkpoint = CheckpointFile(settings.checkpoint_path("x-search"))
        self._response: httpx.Response | None = None
        self.truncated = 0

    # -- lifecycle --

    def request_stop(self) -> None:
        """Stop soon: set the flag and close a blocked stream read."""
        self.stop.set()
        response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:  # closing from another thread may race; the flag suffices
                log.debug("closing the stream response raised", exc_info=True)

    def _sleep(self, seconds: float) -> bool:
        """Wait, unless stopping; True if stopped."""
        return self.stop.wait(max(0.0, seconds))

    def run(self) -> None:
        """Run the configured mode until stopped; always flushes."""
        try:
            mode = self.settings.x_mode
            if mode == "stream":
                self.sync_rules([self.settings.x_query or arxiv_url_clause()])
                self.run_stream()
            elif mode == "search":
                self.run_search([self.settings.x_query or arxiv_url_clause()])
            else:
                handle = self.settings.x_follow_handle
                if not handle:
                    raise XConfigError("follows mode needs TRENDING_X_FOLLOW_HANDLE / --handle")
                following = self.fetch_follow_list(handle)
                names = [user["username"] for user in following if user.get("username")]
                if not names:
                    raise XConfigError(f"@{handle} follows nobody; nothing to watch")
                base = self.settings.x_query or arxiv_url_clause()
                rules = batch_from_rules(
                    names,
                    base,
                    self.settings.x_rule_max_length,
                    self.settings.x_max_rules
                    if self.settings.x_follows_transport == "stream"
                    else None,
                )
                if self.settings.x_follows_transport == "stream":
                    self.sync_rules(rules)
                    self.run_stream()
                else:
                    self.run_search(rules)
        finally:
            self.writer.close(timeout=30.0)

    # -- REST with rate limits --

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Call the API, waiting out 429s (until `x-rate-limit-reset`) and 5xx/network errors."""
        backoff = StreamBackoff(scale=self.backoff.scale)
        while True:
            try:
                return fn()
            except tweepy.TooManyRequests as exc:
                self.metrics.add_error("rate_limited")
                wait = rate_limit_wait(
                    exc.reset_time,
                    time.time(),
                    backoff.http_error(429),
                    self.settings.x_max_rate_limit_wait_seconds,
                )
                log.warning("X rate limit on %s; waiting %.1fs", what, wait)
            except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
                raise XConfigError(
                    f"X refused {what} (HTTP {exc.response.status_code}): check the bearer "
                    "token and the access level of the app"
                ) from None
            except tweepy.TwitterServerError as exc:
                self.metrics.add_error("http")
                wait = backoff.http_error(exc.response.status_code)
                log.warning(
                    "X server error %s on %s; retry in %.1fs", exc.response.status_code, what, wait
                )
            except requests.RequestException as exc:
                self.metrics.add_error("network")
                wait = backoff.network_error()
                log.warning(
                    "network error on %s (%s); retry in %.1fs", what, type(exc).__name__, wait
                )
            if self._sleep(wait):
                raise InterruptedError(f"stopped while waiting to retry {what}")

    # -- rules --

    def sync_rules(self, values: Sequence[str]) -> None:
        """Make our tagged rules exactly `values`; rules added by others are left alone."""
        current = self._call("get rules", self.rules_api.get_rules).get("data") or []
        wanted = {rule_tag(value): value for value in values}
        ours = {r["tag"]: r for r in current if str(r.get("tag") or "").startswith(RULE_TAG_PREFIX)}
        stale = [
            r["id"] for tag, r in ours.items() if tag not in wanted or r["value"] != wanted[tag]
        ]
        if stale:
            self._call("delete rules", lambda: self.rules_api.delete_rules(stale))
        missing = [
            tweepy.StreamRule(value=value, tag=tag)
            for tag, value in wanted.items()
            if tag not in ours or ours[tag]["id"] in stale
        ]
        if missing:
            result = self._call("add rules", lambda: self.rules_api.add_rules(missing))
            errors = result.get("errors") or []
            if errors:
                details = "; ".join(str(e.get("title") or e.get("message")) for e in errors)
                raise XConfigError(f"X rejected stream rules: {details}")
        log.info("stream rules in place: %d of ours (%d removed)", len(wanted), len(stale))

    # -- filtered stream --

    def _stream_params(self) -> dict[str, str]:
        params = {
            "tweet.fields": ",".join(TWEET_FIELDS),
            "expansions": ",".join(EXPANSIONS),
            "user.fields": ",".join(USER_FIELDS),
        }
        if self.settings.x_backfill_minutes:
            params["backfill_minutes"] = str(self.settings.x_backfill_minutes)
        return params

    def run_stream(self) -> None:
        """Read the filtered stream until stopped, reconnecting with X's back-off."""
        url = f"{self.settings.x_api_base_url}/2/tweets/search/stream"
        timeout = httpx.Timeout(10.0, read=self.stream_read_timeout)
        with httpx.Client(timeout=timeout, headers=self._auth) as http:
            while not self.stop.is_set():
                wait = self._stream_once(http, url)
                if wait is not None and self._sleep(wait):
                    break
        self.writer.flush()

    def _stream_once(self, http: httpx.Client, url: str) -> float | None:
        """One connection; returns how long to wait before the next (None: at once)."""
        buffer = b""
        try:
            with http.stream("GET", url, params=self._stream_params()) as response:
                self._response = response
                if self.stop.is_set():
                    return None  # `request_stop` ran before the response was ours to close
                if response.status_code != 200:
                    return self._stream_http_error(response)
                log.info("connected to the X filtered stream")
                self.backoff.reset()
                for chunk in response.iter_raw():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        self._on_stream_line(line.rstrip(b"\r"))
                    self.metrics.maybe_log(self.settings.metrics_log_seconds)
                    if self.stop.is_set():
                        return None
            log.warning("X closed the stream")
            self._drop_partial(buffer)
            return self.backoff.network_error()
        except Exception as exc:
            self._drop_partial(buffer)
            if self.stop.is_set():
                return None  # request_stop closed the response under us
            if not isinstance(exc, httpx.TransportError | httpx.StreamError):
                raise
            self.metrics.add_error("network")
            wait = self.backoff.network_error()
            log.warning(
                "stream connection lost (%s); reconnecting in %.2fs", type(exc).__name__, wait
            )
            return wait
        finally:
            self._response = None

    def _stream_http_error(self, response: httpx.Response) -> float:
        status = response.status_code
        body = response.read()[:300].decode("utf-8", "replace")
        self.metrics.add_error("rate_limited" if status == 429 else "http")
        if status in (400, 401, 403):
            raise XConfigError(f"X refused the stream (HTTP {status}): {body.strip()}")
        wait = self.backoff.http_error(status)
        log.warning("stream HTTP %d (%s); reconnecting in %.2fs", status, body.strip(), wait)
        return wait

    def _drop_partial(self, buffer: bytes) -> None:
        # Bytes after the last newline when the connection ended: half a message, which X
        # will not complete. It is not an accepted post; count it and move on.
        if buffer.strip():
            self.truncated += 1
            self.metrics.add_error("truncated")
            log.warning("dropped a truncated stream message (%d bytes)", len(buffer))

    def _on_stream_line(self, line: bytes) -> None:
        if not line.strip():
            return  # keep-alive
        self.metrics.add_received()
        found = key_of(line)
        if found.parseable and found.key is None:
            # System messages (operational disconnects, rule errors): not posts.
            self.metrics.add_filtered()
            log.warning("X stream message: %s", line[:300].decode("utf-8", "replace"))
            return
        moment = created_at_epoch(line)
        if moment is not None:
            self.metrics.set_event_time(moment)
        self.writer.send(line, found.key, "x")

    # -- recent search --

    def run_search(self, queries: Sequence[str]) -> None:
        """Poll recent search for each query every poll interval, from saved since_ids."""
        while not self.stop.is_set():
            try:
                self.poll_search(queries)
            except InterruptedError:
                break
            if self._sleep(self.settings.x_poll_interval_seconds):
                break

    def _load_since_ids(self) -> dict[str, str]:
        doc = self.checkpoint.load() or {}
        since = doc.get("since_ids", {})
        return {str(k): str(v) for k, v in since.items()} if isinstance(since, dict) else {}

    def poll_search(self, queries: Sequence[str]) -> dict[str, str]:
        """One pass over `queries` (all pages each); saves since_ids once Kafka acked."""
        since_ids = self._load_since_ids()
        for query in queries:
            newest = self._search_query(query, since_ids.get(query))
            if newest is not None:
                since_ids[query] = newest
        if self.writer.flush():
            self.checkpoint.save(
                {"since_ids": since_ids, "saved_at": to_utc_iso(datetime.now(UTC))}
            )
        return since_ids

    def _search_query(self, query: str, since_id: str | None) -> str | None:
        token: str | None = None
        newest: str | None = None
        while not self.stop.is_set():
            params: dict[str, Any] = {
                "max_results": self.settings.x_max_results,
                "tweet_fields": list(TWEET_FIELDS),
                "expansions": list(EXPANSIONS),
                "user_fields": list(USER_FIELDS),
            }
            if since_id:
                params["since_id"] = since_id
            if token:
                params["next_token"] = token
            response = self._call(
                "recent search", partial(self.api.search_recent_tweets, query, **params)
            )
            raw = response.content
            try:
                doc = json.loads(raw)
            except ValueError:
                self.metrics.add_error("bad_json")
                log.error("recent search returned a non-JSON body; ending this poll")
                return newest
            meta = doc.get("meta") or {}
            if doc.get("data"):
                self.metrics.add_received(len(doc["data"]))
                found = key_of(raw)
                moment = created_at_epoch(raw)
                if moment is not None:
                    self.metrics.set_event_time(moment)
                self.writer.send(raw, found.key, "x")
                # The first page is the newest; its newest_id is the next since_id.
                newest = newest or meta.get("newest_id")
            token = meta.get("next_token")
            if not token:
                return newest
        return newest

    # -- follow lists --

    def fetch_follow_list(self, handle: str) -> list[dict[str, Any]]:
        """Whom @`handle` follows (all pages), also saved to `<x_follows_dir>/<handle>.json`."""
        handle = handle.lstrip("@")
        user_doc = self._call(
            "user lookup", lambda: self.api.get_user(username=handle, user_fields=["username"])
        ).json()
        user = user_doc.get("data")
        if not user:
            raise XConfigError(f"X has no user @{handle}")
        following: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"max_results": 1000, "user_fields": list(USER_FIELDS)}
            if token:
                params["pagination_token"] = token
            page = self._call(
                "follow list",
                partial(self.api.get_users_following, user["id"], **params),
            ).json()
            following.extend(page.get("data") or [])
            token = (page.get("meta") or {}).get("next_token")
            if not token:
                break
        save_follow_list(self.settings.x_follows_dir, handle, str(user["id"]), following)
        log.info("@%s follows %d accounts", handle, len(following))
        return following


def save_follow_list(
    directory: Path, handle: str, user_id: str, following: list[dict[str, Any]]
) -> Path:
    """Write the follow list as JSON (atomically) and return its path."""
    path = directory / f"{handle.lower()}.json"
    CheckpointFile(path).save(
        {
            "handle": handle,
            "user_id": user_id,
            "fetched_at": to_utc_iso(datetime.now(UTC)),
            "following": following,
        }
    )
    return path
