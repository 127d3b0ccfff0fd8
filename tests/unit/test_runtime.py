"""trending_arxiv.runtime: signals become request_stop, handlers come back, one log format,
the garbage collector's thresholds."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from pydantic import ValidationError

from trending_arxiv.runtime import collect_garbage_rarely
from trending_arxiv.settings import SinkSettings, WorkerSettings

# A service that works until asked to stop, in a process of its own (signals need the
# main thread), reporting on stdout what happened.
SERVICE = textwrap.dedent(
    """
    import logging, signal, sys, threading
    from trending_arxiv.runtime import configure_logging, run_service

    class Sleeper:
        def __init__(self):
            self.stopped = threading.Event()
        def run(self):
            print("running", flush=True)
            self.stopped.wait(30)
            return "stopped" if self.stopped.is_set() else "timed out"
        def request_stop(self):
            self.stopped.set()

    configure_logging("INFO")
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    print(run_service(Sleeper()), flush=True)
    after = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    print("restored" if after == before else f"not restored: {after}", flush=True)
    logging.getLogger("kafka").info("chatty client")
    logging.getLogger("ours").info("a record of ours")
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_asks_the_service_to_stop_and_handlers_come_back(sig: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVICE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "running"
    time.sleep(0.2)  # run_service has hooked the signals before run() printed
    began = time.monotonic()
    process.send_signal(sig)
    out, err = process.communicate(timeout=20)
    assert time.monotonic() - began < 10  # not the service's 30 s timeout
    assert process.returncode == 0, err
    assert out.split() == ["stopped", "restored"]
    lines = err.splitlines()
    # Not a terminal: one plain line per record, with time and level; clients kept quiet.
    assert any(
        line.endswith(f"INFO trending_arxiv.runtime: {sig.name}: stopping") for line in lines
    )
    assert any(line.endswith("INFO ours: a record of ours") for line in lines)
    assert "chatty client" not in err


def test_collect_garbage_rarely_sets_the_young_threshold_and_returns_the_old_ones() -> None:
    before = gc.get_threshold()
    try:
        assert collect_garbage_rarely(12_345) == before
        assert gc.get_threshold() == (12_345, 20, 100)
        assert collect_garbage_rarely(700) == (12_345, 20, 100)
    finally:
        gc.set_threshold(*before)


def test_the_sink_and_the_worker_collect_rarely_by_default_and_take_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SinkSettings().sink_gc_threshold == WorkerSettings().worker_gc_threshold == 50_000
    monkeypatch.setenv("TRENDING_SINK_GC_THRESHOLD", "2000")
    assert SinkSettings().sink_gc_threshold == 2000
    monkeypatch.setenv("TRENDING_SINK_GC_THRESHOLD", "10")
    with pytest.raises(ValidationError):
        SinkSettings()
