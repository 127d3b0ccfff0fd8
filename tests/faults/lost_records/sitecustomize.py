"""Fault injection for `test_lost_records.py`, loaded by any Python started with this
folder on PYTHONPATH (Python imports `sitecustomize` at start-up).

With TRENDING_FAULT_DROP_OFFSETS=2,5,6 a Faust worker's consumer drops the first delivery
of the records at those offsets of every partition of the topics the agents read, before
any agent sees them and without acknowledging them: what Faust's recovery race does to
records read before it clears the stream queues (faust-streaming/faust#596). A record
delivered again (read again from an earlier offset) goes through.
"""

from __future__ import annotations

import os

_OFFSETS = os.environ.get("TRENDING_FAULT_DROP_OFFSETS")

if _OFFSETS:
    from typing import Any

    from faust.transport import conductor

    _offsets = {int(offset) for offset in _OFFSETS.split(",")}
    _topics = (".posts.raw", ".posts.routed", ".mentions")
    _init = conductor.Conductor.__init__

    def _dropping_init(self: Any, *args: Any, **kwargs: Any) -> None:
        _init(self, *args, **kwargs)
        deliver = self.on_message
        dropped: set[tuple[str, int, int]] = set()

        async def on_message(message: Any) -> Any:
            where = (message.topic, message.partition, message.offset)
            chosen = message.offset in _offsets and message.topic.endswith(_topics)
            if chosen and where not in dropped:
                dropped.add(where)
                print(f"fault injection: dropped {where}", flush=True)
                return None
            return await deliver(message)

        self.on_message = on_message

    conductor.Conductor.__init__ = _dropping_init  # type: ignore[method-assign]
