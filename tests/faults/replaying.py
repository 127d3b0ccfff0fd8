"""Corpus, producer process and final check shared by the fault tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.hostile.corpus import fuzz_corpus
from tests.hostile.pipeline_checks import describe_difference, expected_state, wait_for_counts
from trending_arxiv.core.simulate import SimulationResult, read_lines, simulate
from trending_arxiv.demo import bundled_sample_path
from trending_arxiv.devstack.pipeline import PipelineProcesses
from trending_arxiv.settings import CommonSettings

# Reposts wait the worker's default, one hour of stream time, with the sweep every
# second: stream time for expiry follows every raw partition's progress (`core.progress`),
# so a subject that lags behind a fault (a stalled worker, a killed broker) still meets
# its repost, and the counts equal the reference's, which never expires a repost.
REPOST_WAIT = 3600.0
REPOST_WAIT_ENV = {
    "TRENDING_REPOST_JOIN_WAIT_SECONDS": str(REPOST_WAIT),
    "TRENDING_REPOST_EXPIRY_CHECK_SECONDS": "1",
}


def build_corpus(directory: Path, generated: int, seed: int) -> tuple[Path, SimulationResult]:
    """The bundled sample plus `generated` good posts in real shapes, and its reference."""
    lines = list(read_lines([bundled_sample_path()]))
    lines += [
        line.raw
        for line in fuzz_corpus().generate(generated, bad_fraction=0.0, seed=seed, order_safe=True)
    ]
    path = directory / "corpus.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    reference = simulate(read_lines([path]), repost_wait_seconds=REPOST_WAIT)
    assert len(reference.counts) > 100 and not reference.dead_letters
    return path, reference


def start_producer(
    corpus: Path,
    checkpoint: Path,
    env: dict[str, str],
    output: Path,
    rate: float | None = None,
) -> subprocess.Popen[bytes]:
    """`trending-arxiv produce replay --checkpoint` as its own process (group)."""
    command = [sys.executable, "-m", "trending_arxiv.cli.main", "produce", "replay", str(corpus)]
    command += ["--json", "--no-progress", "--checkpoint", str(checkpoint)]
    if rate is not None:
        command += ["--rate", str(rate)]
    with output.open("ab") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def finish_producer(process: subprocess.Popen[bytes], output: Path, timeout: float) -> dict:
    """Wait for a replay to end; its JSON summary (it must exit 0 and be complete)."""
    code = process.wait(timeout)
    text = output.read_text(errors="replace")
    assert code == 0, f"producer exited {code}:\n{text[-3000:]}"
    summary: dict[str, Any] = json.loads(
        [line for line in text.splitlines() if line.startswith("{")][-1]
    )
    assert summary["complete"] and summary["rejected"] == 0, summary
    return summary


def checkpoint_line(checkpoint: Path) -> int:
    """Lines of the (single) input file Kafka acknowledged; a huge number once it is done."""
    try:
        doc = json.loads(checkpoint.read_text())
        return 10**9 if doc["file_index"] > 0 else int(doc["line"])
    except (OSError, ValueError, KeyError):
        return 0


def warm_up(env: dict[str, str], settings: CommonSettings, processes: PipelineProcesses) -> None:
    """Replay the bundled sample and wait until it reaches Elasticsearch.

    The faults must hit a running pipeline: the worker and the sink do not survive Kafka
    or Elasticsearch missing *while they start*. The sample is part of every corpus
    here, so replaying it once more changes no count (the stream drops duplicates).
    """
    command = [sys.executable, "-m", "trending_arxiv.cli.main", "produce", "replay"]
    subprocess.run(
        [*command, str(bundled_sample_path()), "--no-progress"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    wait_until_flowing(settings, processes, timeout=120)


def wait_for_checkpoint(checkpoint: Path, at_least: int, timeout: float) -> int:
    """Wait until Kafka has acknowledged `at_least` lines (as the checkpoint says)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = checkpoint_line(checkpoint)
        if line >= at_least:
            return line
        time.sleep(0.1)
    raise AssertionError(f"checkpoint {checkpoint} never reached line {at_least}")


def assert_counts_exact(
    settings: CommonSettings,
    reference: SimulationResult,
    processes: PipelineProcesses,
    timeout: float,
) -> None:
    """Elasticsearch ends with the reference's papers (posts and accounts) and mentions."""
    got = wait_for_counts(settings, reference, timeout, alive=processes.check_alive)
    want = expected_state(reference)
    assert got == want, describe_difference(got, want)


def wait_until_flowing(
    settings: CommonSettings, processes: PipelineProcesses, timeout: float
) -> None:
    """Wait until Elasticsearch holds some mentions: the worker and sink are past start-up.

    (They do not survive Kafka or Elasticsearch missing *while they start*; the faults
    here hit a running pipeline.)
    """
    from elasticsearch import ApiError, Elasticsearch, NotFoundError

    es = Elasticsearch(**settings.elasticsearch_client_kwargs())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            if es.count(index=settings.indices.mentions)["count"] > 0:
                return
        except NotFoundError:
            pass  # the sink has not created its indices yet
        except ApiError as error:
            if error.status_code != 503:
                raise  # 503: just created, its shard not started yet
        time.sleep(0.5)
    raise AssertionError(f"nothing reached Elasticsearch within {timeout}s")
