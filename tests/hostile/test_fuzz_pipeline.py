"""10k hostile lines through producer -> Kafka -> Faust -> sink -> Elasticsearch.

Every bad line ends in the dead-letter topic with its reason, every good one is counted
exactly as the reference simulation counts it, no process dies, and the secrets in the
processes' environment never show in their output.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.hostile.corpus import fuzz_corpus
from tests.hostile.pipeline_checks import (
    dead_letter_raw,
    describe_difference,
    expected_state,
    letters_by_raw,
    logs_of,
    read_topic,
    wait_for_counts,
)
from tests.integration.pipeline import settings_for, start_pipeline, wait_for_quiet
from trending_arxiv.core.simulate import simulate

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "trending_arxiv.cli.main"]
CORPUS_LINES = 10_000
# Reposts wait for their subject the worker's default time, in stream time: a watermark,
# so a lagging partition cannot expire them (tests/faults/test_partition_skew.py).
# Reposted posts are never deleted (order_safe): whether such a repost counts depends on
# whether it was read before the delete. This test is about bad input.
REPOST_WAIT = 3600.0


def secret_env() -> dict[str, str]:
    """Credentials the local servers ignore (no security there) but the processes read."""
    tag = uuid.uuid4().hex
    return {
        "TRENDING_X_BEARER_TOKEN": f"xbearer{tag}",
        "TRENDING_MASTODON_ACCESS_TOKEN": f"mastotok{tag}",
        "ELASTICSEARCH_USERNAME": "elastic",
        "ELASTICSEARCH_PASSWORD": f"espassword{tag}",
        "ELASTICSEARCH_API_KEY": f"esapikey{tag}",
    }


def assert_no_secret(texts: dict[str, str], secrets: dict[str, str]) -> None:
    for name, value in secrets.items():
        if name == "ELASTICSEARCH_USERNAME":
            continue  # a user name is not a secret
        for where, text in texts.items():
            assert value not in text, f"{name} appears in {where}"


def test_fuzz_corpus_dead_letters_every_bad_line_and_counts_every_good_one(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    corpus = fuzz_corpus().generate(total=CORPUS_LINES, seed=8, order_safe=True)
    path = tmp_path / "corpus.jsonl"
    fuzz_corpus().write_corpus(corpus, path)
    reference = simulate((line.raw for line in corpus), repost_wait_seconds=REPOST_WAIT)
    bad = [line for line in corpus if line.bad]
    assert len(reference.dead_letters) == len(bad)  # the reference agrees with the labels
    categories = Counter(line.category for line in bad)
    assert len(categories) >= 8 and len(reference.counts) >= 100, (categories, reference.counts)

    secrets = secret_env()
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = start_pipeline(
        namespace,
        kafka,
        es_url,
        logs,
        TRENDING_REPOST_JOIN_WAIT_SECONDS=str(REPOST_WAIT),
        **secrets,
    )
    began = time.monotonic()
    try:
        produced = subprocess.run(
            [*CLI, "produce", "replay", str(path), "--json", "--no-progress"],
            env=processes.env,
            capture_output=True,
            timeout=180,
        )
        output = {"producer stdout": produced.stdout.decode(), "producer stderr": ""}
        output["producer stderr"] = produced.stderr.decode(errors="replace")
        assert produced.returncode == 0, output["producer stderr"][-3000:]
        summary = json.loads(produced.stdout.decode().strip().splitlines()[-1])
        print(f"produced in {time.monotonic() - began:.1f}s")
        assert summary["sent"] == CORPUS_LINES and summary["complete"], summary
        assert summary["rejected"] == 0, summary

        wait_for_quiet(settings, timeout=240)
        print(f"pipeline quiet after {time.monotonic() - began:.1f}s")
        got = wait_for_counts(settings, reference, timeout=60, alive=processes.check_alive)
        want = expected_state(reference)
        assert got == want, describe_difference(got, want)

        letters = read_topic(kafka, settings.topics.dead_letter, expected=len(bad))
        assert all(letter["reason"] and letter["stage"] == "parse" for letter in letters), [
            (letter["stage"], letter["reason"]) for letter in letters if letter["stage"] != "parse"
        ][:5]
        want_letters = Counter(dead_letter_raw(line.raw) for line in bad)
        assert letters_by_raw(letters) == want_letters
        reasons = Counter(
            (dead_letter_raw(corpus[number - 1].raw), reason)
            for number, reason in reference.dead_letters
        )
        assert Counter((letter["raw"], letter["reason"]) for letter in letters) == reasons

        processes.check_alive()  # the worker and the sink survived all of it
        print(f"fuzz corpus counted in {time.monotonic() - began:.1f}s")
    finally:
        processes.stop()
    assert_no_secret({**logs_of(logs), **output}, secrets)
