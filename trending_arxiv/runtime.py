"""How every long-running process runs: logging set up once, SIGTERM/SIGINT hooked in one
place, the same exit codes.

A process is a `Service`: `run()` works until it is done or asked to stop, and
`request_stop()` (called from a signal handler, so it only sets a flag) asks it to stop
cleanly, finishing or abandoning the batch it holds without committing it. `run_service`
runs one with both signals turned into `request_stop`, and restores the previous handlers
afterwards. The Faust worker and uvicorn keep their own signal handling but log through
`configure_logging` as well.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Protocol, TypeVar

from rich.console import Console
from rich.logging import RichHandler

from trending_arxiv.core.logs import RepeatFilter

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: Exit codes of every command: done (or stopped by a signal), failed, misconfigured.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# Third-party clients are chatty at INFO (every connection and rebalance) and some log
# request headers at DEBUG: they speak at WARNING and above whatever our level is.
QUIET_LOGGERS = (
    "kafka",
    "elastic_transport",
    "httpx",
    "httpcore",
    "tweepy",
    "urllib3",
    "websockets",
)

log = logging.getLogger(__name__)


class Service(Protocol[T_co]):
    """A long-running process: runs until done or asked to stop."""

    def run(self) -> T_co: ...

    def request_stop(self) -> None: ...


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr at `level`: Rich on a terminal, one plain line per record otherwise.

    Plain lines (with time and level) keep log files and supervisors' captures greppable:
    Rich wraps long records at the terminal width, which a file does not have.
    """
    handler: logging.Handler
    if sys.stderr.isatty():
        handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # A warning a client repeats (Kafka down: ~8 lines a second from kafka-python) is said
    # once, then at most once a minute with how many were held back.
    handler.addFilter(RepeatFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    floor = max(logging.WARNING, logging.getLogger().level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(floor)


@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT call `request_stop` (then the old handlers return).

    Outside the main thread (where Python cannot take signals) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        request_stop()

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_service(service: Service[T], run: Callable[[], T] | None = None) -> T:
    """Run `service` (or `run`, e.g. its `run` with options bound) until done or signalled."""
    with stop_on_signals(service.request_stop):
        return (run or service.run)()


def collect_garbage_rarely(young_threshold: int) -> tuple[int, int, int]:
    """Run Python's cyclic garbage collector after `young_threshold` allocations instead
    of 700 (and its older generations rarer too); returns the thresholds before.

    The worker's tables and the sink's batches hold hundreds of thousands of small,
    acyclic containers that live for a while: at the default, each young collection
    walks them again (~15% of the worker's CPU, half of the sink's document building).
    Rarer collections only delay freeing the few cycles there are (the clients' own)."""
    before = gc.get_threshold()
    gc.set_threshold(young_threshold, 20, 100)
    return before
