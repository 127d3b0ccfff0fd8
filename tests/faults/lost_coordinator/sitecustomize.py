"""Fault injection for `test_worker_stall.py`, loaded by any Python started with this
folder on PYTHONPATH (Python imports `sitecustomize` at start-up).

With TRENDING_FAULT_LOSE_COORDINATOR_WHEN=PATH, once the file PATH exists aiokafka's
group coordinator loses its coordinator for good: every later offset commit waits
forever, as in aio-libs/aiokafka#1133 after a broker restart. Nothing else changes.
A process that restarted itself (TRENDING_WORKER_STALL_RESTARTS set) is left healthy.
"""

from __future__ import annotations

import os

_TRIGGER = os.environ.get("TRENDING_FAULT_LOSE_COORDINATOR_WHEN")

if _TRIGGER and not os.environ.get("TRENDING_WORKER_STALL_RESTARTS"):
    import asyncio
    from typing import Any

    from aiokafka.consumer import group_coordinator

    _commit_offsets = group_coordinator.GroupCoordinator.commit_offsets
    _trigger_path: str = _TRIGGER

    async def _losing_commit_offsets(self: Any, assignment: Any, offsets: Any) -> Any:
        if os.path.exists(_trigger_path):
            print("fault injection: the group coordinator is lost", flush=True)
            await asyncio.Event().wait()  # never set: the commit never completes
        return await _commit_offsets(self, assignment, offsets)

    group_coordinator.GroupCoordinator.commit_offsets = _losing_commit_offsets  # type: ignore[method-assign]
