"""Replay recorded payloads (JSON lines, `.gz` too) into the raw-posts topic.

Each non-blank line is sent unmodified, keyed by its post id. Lines that are not JSON (a
truncated stream line, say) are sent too, so the stream worker's dead-letter topic keeps
a record of them; the summary counts them apart. A `.json` file holding one JSON
document (even pretty-printed) is sent as one record.

With a checkpoint file, the position (input file, line) of the acknowledged prefix is
saved while replaying; a killed replay restarted with the same checkpoint goes on from
there, re-sending at most the unacknowledged tail (downstream drops duplicate ids).
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from producers.checkpoint import CheckpointFile
from producers.kafka_writer import RawPostWriter
from producers.keys import key_of
from producers.metrics import ProducerMetrics
from producers.settings import ProducerSettings

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".ndjson", ".json")


class ReplayInputError(ValueError):
    """An input path that cannot be replayed (missing, unreadable, wrong kind)."""


@dataclass
class ReplaySummary:
    """What a replay did."""

    files: int = 0
    sent: int = 0
    unparseable: int = 0
    without_key: int = 0
    already_sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    elapsed_seconds: float = 0.0
    complete: bool = False
    resumed_from: tuple[str, int] | None = None
    #: Files in which no line is a post (none is JSON): a binary or a wrong file.
    not_posts: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        rate = self.sent / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0
        out = [
            f"files: {self.files}",
            f"sent: {self.sent} ({rate:.0f} posts/s)",
            f"  of which not JSON (the stream dead-letters them): {self.unparseable}",
            f"  of which without a post id (sent unkeyed): {self.without_key}",
        ]
        if self.resumed_from:
            out.append(
                f"resumed after {self.resumed_from[0]} line {self.resumed_from[1]} "
                f"({self.already_sent} lines already sent)"
            )
        for reason, count in sorted(self.skipped.items()):
            out.append(f"skipped ({reason}): {count}")
        if self.rejected:
            out.append(f"rejected by Kafka: {self.rejected}")
        for path in self.not_posts:
            out.append(f"no line is a post (none is JSON): {path}")
        out.append("complete" if self.complete else "interrupted (resume with the checkpoint)")
        return out


def is_replayable(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(SUFFIXES)


def expand_inputs(paths: Sequence[Path]) -> list[Path]:
    """Files to replay, in argument order; directories contribute their files, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_replayable(p))
            if not found:
                raise ReplayInputError(f"{path}: no .jsonl/.ndjson/.json(.gz) files in directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise ReplayInputError(f"{path}: not a regular file or directory")
        else:
            raise ReplayInputError(f"{path}: no such file or directory")
    return files


def _open(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """(decoded stream, underlying file) — the latter tells progress in on-disk bytes."""
    raw = path.open("rb")
    if path.name.lower().endswith(".gz"):
        decoded = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
        return decoded, raw
    return raw, raw


def iter_records(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """(line number, payload, bytes of the file consumed so far); blank lines give b"".

    A `.json` file that is one JSON document is yielded whole as line 1.
    """
    stream, raw = _open(path)
    with stream, raw:
        try:
            if path.name.lower().removesuffix(".gz").endswith(".json"):
                data = stream.read()
                try:
                    json.loads(data)
                except ValueError:
                    stream = io.BytesIO(data)  # JSON lines after all
                else:
                    yield 1, data.strip(), raw.tell()
                    return
            for number, line in enumerate(stream, start=1):
                # A `tell()` a line, though only the progress bar reads it: the system
                # call releases the GIL, which lets the Kafka client's I/O thread in. Lines'
                # bytes counted instead made a 300k replay 1.25x slower here (session 15).
                yield number, line.rstrip(b"\r\n"), raw.tell()
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ReplayInputError(f"{path}: cannot read ({exc})") from None


class _Pacer:
    """Sleeps so that sending runs at `rate` records per second (None: unpaced)."""

    def __init__(self, rate: float | None, stop: threading.Event) -> None:
        self.rate = rate
        self.stop = stop
        self.start = time.monotonic()
        self.count = 0

    def wait(self) -> None:
        if not self.rate:
            return
        due = self.start + self.count / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            self.stop.wait(delay)
        self.count += 1


def _load_resume(checkpoint: CheckpointFile | None, files: list[Path]) -> tuple[int, int]:
    """(file index, last line sent) to resume after; (0, 0) without a checkpoint."""
    if checkpoint is None:
        return 0, 0
    doc = checkpoint.load()
    if doc is None:
        return 0, 0
    inputs = [str(p) for p in files]
    if doc.get("inputs") != inputs:
        raise ReplayInputError(
            f"checkpoint {checkpoint.path} was written for other inputs "
            f"({doc.get('inputs')}); use a new checkpoint file for these"
        )
    return int(doc.get("file_index", 0)), int(doc.get("line", 0))


def replay(
    paths: Sequence[Path],
    settings: ProducerSettings,
    rate: float | None = None,
    progress: bool = True,
    checkpoint: Path | None = None,
    stop: threading.Event | None = None,
    console: Console | None = None,
) -> ReplaySummary:
    """Send every line of `paths` to the raw-posts topic; returns what was done."""
    if rate is not None and rate <= 0:
        raise ReplayInputError("--rate must be a positive number of posts per second")
    stop = stop or threading.Event()
    files = expand_inputs(paths)
    store = CheckpointFile(checkpoint) if checkpoint else None
    resume_index, resume_line = _load_resume(store, files)
    summary = ReplaySummary(files=len(files))
    if resume_index or resume_line:
        where = str(files[resume_index]) if resume_index < len(files) else "the last file"
        summary.resumed_from = (where, resume_line)

    metrics = ProducerMetrics("replay")
    writer = RawPostWriter(settings, metrics, stop=stop, client_id="trending-arxiv-replay")
    inputs = [str(p) for p in files]

    def save() -> None:
        if store is None:
            return
        position = writer.tracker.committed()
        if position is None:
            return
        index, line = position
        store.save(
            {"inputs": inputs, "file_index": index, "line": line, "complete": index >= len(files)}
        )

    started = time.monotonic()
    pacer = _Pacer(rate, stop)
    total_bytes = sum(p.stat().st_size for p in files[resume_index:])
    use_bar = progress and (console or Console(file=sys.stderr)).is_terminal
    bar = Progress(
        TextColumn("[bold]replay"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[sent]} posts, {task.fields[rate]:.0f}/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console or Console(file=sys.stderr),
        disable=not use_bar,
    )
    task = bar.add_task("replay", total=total_bytes or 1, sent=0, rate=0.0)
    done_bytes = 0
    last_save = time.monotonic()
    try:
        writer.connect()
        with bar:
            for index in range(resume_index, len(files)):
                path = files[index]
                file_bytes = 0
                # Whether a line of this file was JSON (a resumed file had some before).
                has_json = index == resume_index and resume_line > 0
                lines = 0
                for number, payload, consumed in iter_records(path):
                    if stop.is_set():
                        return summary
                    file_bytes = consumed
                    if index == resume_index and number <= resume_line:
                        summary.already_sent += 1
                        continue
                    if not payload.strip():
                        summary.skipped["blank line"] += 1
                        writer.skip((index, number))
                        continue
                    found = key_of(payload)
                    lines += 1
                    has_json = has_json or found.parseable
                    if not found.parseable:
                        summary.unparseable += 1
                    elif found.key is None:
                        summary.without_key += 1
                    pacer.wait()
                    if stop.is_set():
                        return summary
                    metrics.add_received()
                    writer.send(payload, found.key, found.source, position=(index, number))
                    summary.sent += 1
                    now = time.monotonic()
                    if now - last_save >= 0.5:
                        last_save = now
                        save()
                        elapsed = now - started
                        bar.update(
                            task,
                            completed=done_bytes + file_bytes,
                            sent=summary.sent,
                            rate=summary.sent / elapsed if elapsed else 0.0,
                        )
                if lines and not has_json:
                    summary.not_posts.append(str(path))
                done_bytes += path.stat().st_size
                # The next file starts at its line 0; commits once this file is acked.
                writer.skip((index + 1, 0))
            summary.complete = True
            bar.update(task, completed=total_bytes or 1, sent=summary.sent)
    finally:
        writer.close(timeout=None if summary.complete else 30.0)
        save()
        summary.rejected = writer.rejected
        summary.elapsed_seconds = time.monotonic() - started
        if summary.complete and writer.tracker.pending():
            summary.complete = False
    return summary


def summary_dict(summary: ReplaySummary) -> dict[str, Any]:
    """The summary as plain JSON-able data (for `--json`)."""
    return {
        "files": summary.files,
        "sent": summary.sent,
        "unparseable": summary.unparseable,
        "without_key": summary.without_key,
        "already_sent": summary.already_sent,
        "skipped": dict(summary.skipped),
        "rejected": summary.rejected,
        "elapsed_seconds": round(summary.elapsed_seconds, 3),
        "complete": summary.complete,
        "not_posts": list(summary.not_posts),
    }
