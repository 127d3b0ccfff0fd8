"""`trending-arxiv extract [FILE ...]`: raw post payloads in, one JSON line per post out.

Each input line is one payload (X v2/v1.1, Bluesky Jetstream, Mastodon). Server-sent
event streams (Mastodon's ``event:``/``data:`` lines) are accepted too. A bad line gets
``FILE:LINE: reason`` on stderr and the rest go on; the exit status is 0 unless a file
cannot be read.
"""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Iterable
from typing import BinaryIO, TextIO

from trending_arxiv.core.posts import NormalizedPost, PostParseError, parse_line

__all__ = ["format_post", "main", "run_extract"]

_SSE_STATUS_EVENTS = (b"update", b"status.update")


def format_post(post: NormalizedPost) -> str:
    """One output line (no newline): the post as compact JSON."""
    return json.dumps(post.to_json_dict(), ensure_ascii=False, separators=(",", ":"))


def _payload_lines(lines: Iterable[bytes]) -> Iterable[tuple[int, bytes]]:
    """(line number, JSON payload) pairs; SSE framing and blank lines are skipped."""
    event: bytes | None = None
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            event = None  # a blank line ends an SSE event
            continue
        if line.startswith(b"{") or line.startswith(b"["):
            yield lineno, line
        elif line.startswith(b"event:"):
            event = line[6:].strip()
        elif line.startswith(b"data:"):
            # Only status events carry posts; "delete" carries a bare id and
            # "notification" is not a post, so those data lines are skipped.
            if event is None or event in _SSE_STATUS_EVENTS:
                yield lineno, line[5:].strip()
        elif line.startswith(b":") or line.startswith((b"id:", b"retry:")):
            continue  # SSE comment/heartbeat or reconnection fields
        else:
            yield lineno, line  # not JSON: parse_line explains why


def _extract_stream(name: str, stream: BinaryIO, stdout: TextIO, stderr: TextIO) -> None:
    for lineno, payload in _payload_lines(stream):
        try:
            posts = parse_line(payload)
        except PostParseError as exc:
            stderr.write(f"{name}:{lineno}: {exc}\n")
            continue
        for post in posts:
            stdout.write(format_post(post) + "\n")


def run_extract(
    paths: list[pathlib.Path],
    stdout: TextIO,
    stderr: TextIO,
    stdin: BinaryIO | None = None,
) -> int:
    """Extract posts from ``paths`` (standard input when empty); return the exit status."""
    status = 0
    if not paths:
        source = stdin if stdin is not None else sys.stdin.buffer
        _extract_stream("<stdin>", source, stdout, stderr)
        return status
    for path in paths:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, errors reported per file
        except OSError as exc:
            stderr.write(f"{path}: cannot read: {exc.strerror or exc}\n")
            status = 1
            continue
        try:
            with handle:
                _extract_stream(str(path), handle, stdout, stderr)
        except OSError as exc:  # e.g. a directory, or an I/O error mid-file
            stderr.write(f"{path}: cannot read: {exc.strerror or exc}\n")
            status = 1
    return status


def main(argv: list[str] | None = None) -> int:
    """``python -m trending_arxiv.cli.extract [FILE ...]``."""
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(__doc__ or "")
        return 0
    return run_extract([pathlib.Path(a) for a in args], sys.stdout, sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
