"""Resume positions that only move past records Kafka has acknowledged.

Every record a producer reads gets a sequence number and the source position it was read
at. Sent records are acknowledged by Kafka's delivery callback (in the producer's I/O
thread); records that were filtered out need no acknowledgement. The committed position
is the one of the longest acknowledged prefix, so restarting from it loses nothing:
at worst the unacknowledged tail is sent again, and downstream drops duplicates by id.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any


class AckTracker:
    """Sequence numbers in read order; `committed()` is the position of the acked prefix."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        # Entries: [seq, position, acked]. Only the unacknowledged window is kept.
        self._window: deque[list[Any]] = deque()
        self._by_seq: dict[int, list[Any]] = {}
        self._committed: Any = None

    def register(self, position: Any, acked: bool = False) -> int:
        """Record a read at `position`; returns its sequence number."""
        with self._lock:
            seq = self._next
            self._next += 1
            entry = [seq, position, acked]
            if not acked:
                self._by_seq[seq] = entry
            self._window.append(entry)
            self._advance()
            return seq

    def ack(self, seq: int) -> None:
        with self._lock:
            entry = self._by_seq.pop(seq, None)
            if entry is not None:
                entry[2] = True
                self._advance()

    def ack_many(self, seqs: list[int]) -> None:
        """Acknowledge several reads at once (the posts of one envelope)."""
        with self._lock:
            for seq in seqs:
                entry = self._by_seq.pop(seq, None)
                if entry is not None:
                    entry[2] = True
            self._advance()

    def _advance(self) -> None:
        while self._window and self._window[0][2]:
            position = self._window.popleft()[1]
            # None means "no position of its own" (e.g. a middle page of a search).
            if position is not None:
                self._committed = position

    def committed(self) -> Any:
        with self._lock:
            return self._committed

    def pending(self) -> int:
        with self._lock:
            return len(self._by_seq)


class CheckpointFile:
    """A small JSON document written atomically (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"checkpoint {str(self.path)!r} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ValueError(f"checkpoint {str(self.path)!r} is not a JSON object")
        return doc

    def save(self, doc: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(doc, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
