"""When a consumer group has stopped committing while work waits for it (pure logic).

After a broker restart aiokafka can lose a group's coordinator and never find it again
(aio-libs/aiokafka#1133): the member keeps its partitions and may go on reading, but no
offset commit completes, so nothing it does counts and its lag never falls. No error
reaches the application. What can be seen from outside is the symptom: the group's
committed offsets stand still while the topics have records past them. `StallDetector`
turns periodic observations of both into "stuck for how long".

A worker watches the partitions assigned to it only (`own_offsets`): its peers' commits
move on while it is stuck, which would hide its stall, and a peer that stands still (a
paused process) is not one a restart of this worker mends.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from typing import TypeVar

Partition = TypeVar("Partition", bound=Hashable)


class StallDetector:
    """Tracks how long committed offsets have stood still while records wait."""

    def __init__(self) -> None:
        self._committed: dict[Hashable, int] | None = None
        self._since: float | None = None

    def reset(self, now: float) -> None:
        """Forget the history: a pause that explains standing offsets (rebalance, outage)."""
        self._committed = None
        self._since = now

    def observe(
        self, now: float, committed: Mapping[Hashable, int], ends: Mapping[Hashable, int]
    ) -> float:
        """Seconds the group has been stuck as of `now` (0 while it moves or has nothing).

        `committed` are the group's committed offsets (missing: nothing committed yet) and
        `ends` the log-end offsets of the same partitions.
        """
        waiting = any(end > committed.get(tp, 0) for tp, end in ends.items())
        moved = self._committed is None or dict(committed) != self._committed
        if self._since is None or not waiting or moved:
            self._since = now
        self._committed = dict(committed)
        return now - self._since


def own_offsets(
    assigned: Collection[Partition],
    committed: Mapping[Partition, int],
    ends: Mapping[Partition, int],
) -> tuple[dict[Partition, int], dict[Partition, int]]:
    """The committed and end offsets of the `assigned` partitions only."""
    return (
        {tp: offset for tp, offset in committed.items() if tp in assigned},
        {tp: offset for tp, offset in ends.items() if tp in assigned},
    )
