"""trending_arxiv.runtime: signals become request_stop, handlers come back, one log format."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

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
