"""Give the worker's freed heap back to the system now and then (glibc's `malloc_trim`).

The worker's memory is mostly its tables (held), but batches pass through it too: fetched
envelopes of up to 256 KB, compressed and decompressed request buffers. glibc keeps the
pages those free inside its heap, so the worker's RSS stays at its high-water mark. A
`malloc_trim(0)` every few seconds returns the free pages: at 1M posts the worker's peak
fell from ~980 to ~937 MiB at the same CPU a post (bench_worker, session 15). Where
`malloc_trim` does not exist (not glibc) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

import faust

log = logging.getLogger(__name__)


def malloc_trim() -> Callable[[], object] | None:
    """The C library's `malloc_trim(0)`, or None where it has none."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


def register_malloc_trim(app: faust.App, every_seconds: float) -> bool:
    """Attach a timer that trims the heap every `every_seconds` (0: none); whether one is."""
    trim = malloc_trim() if every_seconds else None
    if every_seconds and trim is None:
        log.info("no malloc_trim in this C library: the heap is not trimmed")
    if trim is None:
        return False

    @app.timer(interval=every_seconds, name="malloc-trim")
    async def trim_heap() -> None:
        trim()

    return True
