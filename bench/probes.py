"""Latency probes for `bench_latency`: posts citing papers no corpus post cites.

A count probe is one post citing a new paper (`probe_post`). Alert probes measure how long
after the post that makes a paper take off its alert is on the alerts topic.

A burst is `BURST` posts citing a paper nobody else cites, from `BURST` accounts, their
event times a millisecond apart: the rules (10 accounts in an hour; 5 posts in an hour at
5 times the day's rate) fire on one of them. An alert's `triggered_at` is the event time of
the post that fired it, so its latency runs from that post's send to the moment a
consumer of the alerts topic reads it. Alerts are decided behind the watermark
(`core.alert_clock`): on replayed history event time runs far ahead of the wall clock and
the watermark passes at once; on live traffic (event time = the wall clock) it waits for
every raw partition to be past the post, or idle.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import orjson
from kafka import KafkaConsumer

from bench.corpus import dump_line, iso_ms

BURST = 10
# Post numbers of the bursts (tweet ids, accounts) and their papers' probe numbers: far
# from the count probes' own.
_FIRST_POST = 7_000_000
_FIRST_PAPER = 20_000


def probe_id(i: int) -> str:
    """A paper ID no corpus post cites (latency probes: a new paper each)."""
    return f"2612.{90000 + i % 10000:05d}" if i < 10000 else f"2611.{i % 100000:05d}"


def probe_post(i: int, arxiv_id: str, when: datetime) -> tuple[str, bytes]:
    """(post id, raw line): an X stream message citing only `arxiv_id` (latency probes)."""
    tweet_id = str(1_900_000_000_000_000_000 + i)
    author = str(30_000_000 + i % 1000)
    data = {
        "id": tweet_id,
        "author_id": author,
        "created_at": iso_ms(when),
        "text": f"latency probe {i} https://t.co/probe{i}",
        "entities": {
            "urls": [
                {
                    "start": 14,
                    "end": 37,
                    "url": f"https://t.co/probe{i}",
                    "expanded_url": f"https://arxiv.org/abs/{arxiv_id}",
                }
            ]
        },
        "edit_history_tweet_ids": [tweet_id],
    }
    users = [{"id": author, "username": f"probe{author}", "name": "Probe", "description": ""}]
    return tweet_id, dump_line({"data": data, "includes": {"users": users}})


def _moment(when: datetime) -> int:
    """An event time in whole milliseconds (the key `triggered_at` is matched by)."""
    return round(when.timestamp() * 1000)


class AlertProbes:
    """Bursts sent, and the first alert of each paper and rule read back."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._consumer_args: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "auto_offset_reset": "earliest",
            "consumer_timeout_ms": 200,
        }
        self._topic = topic
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self.sent: dict[tuple[str, int], float] = {}  # (paper, event ms) -> send time
        self.papers: list[str] = []
        self.seen: dict[tuple[str, str], tuple[float, int]] = {}  # (paper, rule) -> read, ms

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def burst(self, number: int, when: datetime) -> list[bytes]:
        """The lines of burst `number` at event time `when`; their send times are noted
        now (call it just before handing them to the producer)."""
        arxiv_id = probe_id(_FIRST_PAPER + number)
        lines = []
        now = time.monotonic()
        with self._lock:
            self.papers.append(arxiv_id)
            for k in range(BURST):
                moment = when + timedelta(milliseconds=k)
                _, line = probe_post(_FIRST_POST + number * BURST + k, arxiv_id, moment)
                self.sent[(arxiv_id, _moment(moment))] = now
                lines.append(line)
        return lines

    def outstanding(self) -> int:
        """Papers sent without any alert read back yet."""
        with self._lock:
            alerted = {paper for paper, _ in self.seen}
            return sum(1 for paper in self.papers if paper not in alerted)

    def _watch(self) -> None:
        consumer = KafkaConsumer(self._topic, **self._consumer_args)
        try:
            while not self._stop.is_set():
                for record in consumer:
                    read = time.monotonic()
                    alert = orjson.loads(record.value)
                    moment = _moment(datetime.fromisoformat(alert["triggered_at"]))
                    with self._lock:
                        self.seen.setdefault((alert["arxiv_id"], alert["rule"]), (read, moment))
                    if self._stop.is_set():
                        break
        finally:
            consumer.close()

    def latencies(self) -> dict[str, list[float]]:
        """Each rule's latencies, seconds (alerts of papers that are not probes, or whose
        firing post is not known, are left out)."""
        by_rule: dict[str, list[float]] = {}
        with self._lock:
            for (arxiv_id, rule), (read, moment) in self.seen.items():
                sent = self.sent.get((arxiv_id, moment))
                if sent is not None:
                    by_rule.setdefault(rule, []).append(read - sent)
        return by_rule
