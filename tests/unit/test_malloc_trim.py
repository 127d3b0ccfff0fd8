"""The worker's heap trim timer (streams/memory.py)."""

from __future__ import annotations

import faust

from streams.memory import malloc_trim, register_malloc_trim


def test_the_c_library_here_trims_and_the_timer_is_attached_unless_off() -> None:
    trim = malloc_trim()
    assert trim is not None  # glibc, here and in the docker image (python:3.11-slim)
    assert trim() in (0, 1)  # 1: memory was given back
    app = faust.App("malloc-trim-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    timers_before = len(app._app_tasks)
    assert register_malloc_trim(app, 0) is False
    assert len(app._app_tasks) == timers_before
    assert register_malloc_trim(app, 5.0) is True
    assert len(app._app_tasks) == timers_before + 1
