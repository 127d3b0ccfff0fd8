"""Which papers' counts to re-send as time passes without posts (pure logic).

Windows decay while no post comes, so a paper's count update goes stale once one of its
windows changes. `RefreshSchedule` keeps, per paper, the moment that happens
(`counting.next_count_change`) in a priority queue, so each refresh costs what is due,
not a walk over every paper. Ranking by trend score needs no refresh at all
(`counting.trend_rank` is time-invariant).

It lives in one worker's memory: after a restart or a rebalance (`reset`), the first
refresh re-sends every paper the worker owns whose sent counts may be stale, which fills
it again. That is every paper still holding a bucket that counts, not only the recent
ones: a paper sent while inside its 30 days and past them by the reset must be sent once
more, or its document keeps a rank and counts it no longer has (and two runs of the same
input would differ by when their rebalances fell).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from datetime import datetime

from trending_arxiv.core import counting
from trending_arxiv.core.buckets import LATEST, POSTS
from trending_arxiv.core.counting import PaperState


class RefreshSchedule:
    """When each paper's last sent counts stop being right, and which are due now."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}  # paper -> moment (epoch s) its counts change
        self._queue: list[tuple[float, str]] = []  # the same, plus superseded entries
        self._sent_at: dict[str, datetime] = {}  # sent since the last `due`, and as of when
        self._filled = False

    def __len__(self) -> int:
        """Papers with a change ahead."""
        return len(self._next)

    def reset(self) -> None:
        """Forget everything: the next `due` returns every paper that may be stale."""
        self._next.clear()
        self._queue.clear()
        self._sent_at.clear()
        self._filled = False

    def note_sent(self, arxiv_id: str, as_of: datetime) -> None:
        """An update of the paper as of `as_of` was sent (cheap: on the counting path;
        the next `due` works out when it goes stale, once however many were sent)."""
        self._sent_at[arxiv_id] = as_of

    def schedule(self, arxiv_id: str, state: PaperState, as_of: datetime) -> None:
        """The paper's counts as of `as_of` were sent: note when they go stale."""
        moment = counting.next_count_change(state, as_of)
        if moment is None:
            self._next.pop(arxiv_id, None)
            return
        self._next[arxiv_id] = moment
        heapq.heappush(self._queue, (moment, arxiv_id))
        if len(self._queue) > 2 * len(self._next) + 1024:  # drop superseded entries
            self._queue = [(m, a) for a, m in self._next.items()]
            heapq.heapify(self._queue)

    def due(
        self,
        states: Mapping[str, PaperState | None],
        as_of: datetime,
        owned: Callable[[str], bool],
    ) -> list[str]:
        """Papers whose last sent counts differ from their counts at `as_of`.

        `states` are the worker's paper states (standby copies too; `owned` tells which
        are its own). The caller sends each one's update and calls `schedule` for it.
        """
        for arxiv_id, sent in self._sent_at.items():
            state = states.get(arxiv_id)
            if state:  # the state sent then: a state only changes with an update sent
                self.schedule(arxiv_id, state, sent)
        self._sent_at.clear()
        now = as_of.timestamp()
        if not self._filled:
            self._filled = True
            return [
                arxiv_id
                for arxiv_id, state in states.items()
                if state and _may_be_stale(state) and owned(arxiv_id)
            ]
        due = []
        while self._queue and self._queue[0][0] < now:
            moment, arxiv_id = heapq.heappop(self._queue)
            if self._next.get(arxiv_id) == moment:  # else superseded by a later schedule
                del self._next[arxiv_id]
                due.append(arxiv_id)
        return due


def _may_be_stale(state: PaperState) -> bool:
    """Whether a paper's last sent counts may differ from its counts now, not knowing
    when they were sent: it holds a bucket that counts. Counting prunes the buckets past
    30 days before it sends, so a paper without one was last sent with nothing to lose."""
    return any(
        posts or latest
        for buckets in (state["min"], state["hr"])
        for posts, latest in zip(buckets[POSTS], buckets[LATEST], strict=True)
    )
