"""Retry a call while a server (Kafka, Elasticsearch) is unavailable, with back-off."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

log = logging.getLogger(__name__)
T = TypeVar("T")


class Stopped(RuntimeError):
    """The process was asked to stop while it waited for a server."""


def call_until_available(
    call: Callable[[], T],
    what: str,
    errors: tuple[type[BaseException], ...],
    stop_event: threading.Event | None = None,
    max_wait_seconds: float = 30.0,
) -> T:
    """Call `call` until it stops raising one of `errors`; back off up to `max_wait_seconds`.

    A server that is down is waited for, never a reason to exit; `stop_event` (SIGTERM)
    ends the wait with `Stopped`.
    """
    stop_event = stop_event or threading.Event()

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s unavailable (%s); retrying in %.1fs", what, error, wait)

    def sleep(seconds: float) -> None:
        if stop_event.wait(seconds):
            raise Stopped(f"stopped while waiting for {what}")

    retrying = Retrying(
        retry=retry_if_exception_type(errors),
        wait=wait_exponential(multiplier=0.5, max=max_wait_seconds),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    return retrying(call)
