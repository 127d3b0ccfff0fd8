"""The worker's liveness watchdog: restart in place when offset commits stand still.

aiokafka can lose the group coordinator after a broker restart and never find it again
(aio-libs/aiokafka#1133; `trending_arxiv.core.liveness`). Faust then waits on a commit that
never completes, with no error to react to. A timer asks Kafka itself (kafka-python, a
fresh client each time) for the group's committed and log-end offsets of the partitions
assigned to this worker that the agents read; when those committed offsets stand still for
`worker_stall_restart_seconds` while records wait, the worker re-executes itself: same
PID, same command line, fresh Kafka clients. Just before, a fresh client removes the
stuck member from the group (the member cannot leave by itself), so the restarted worker
is assigned its partitions at once rather than after the old session times out. That is
safe by design: nothing after the last commit counted, and a redelivered record changes
nothing (the SIGKILL fault test restarts a worker the hard way). While Kafka does not
answer, or the group rebalances or recovers its tables, standing offsets are expected and
the watch starts over.

A second cause of standing commits is Faust's own (faust-streaming/faust#596, open): a
worker that starts with records waiting can read some before its recovery clears the
stream queues, so the first records after the committed offset of a partition are never
processed, and Faust commits nothing past that gap, for good. Half way to a restart, the
watch re-reads such partitions from their committed offset (processing a record again
changes nothing); the restart stays the last resort.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import faust
from faust.types import TP
from kafka.errors import KafkaError

from streams.topics import StreamTopics
from trending_arxiv.core.liveness import StallDetector, own_offsets
from trending_arxiv.kafka import group_offsets, remove_group_member
from trending_arxiv.settings import WorkerSettings

log = logging.getLogger(__name__)

#: Set in the environment of a worker that restarted itself: how many times it did.
RESTARTS_VARIABLE = "TRENDING_WORKER_STALL_RESTARTS"


def restart_in_place(reason: str) -> None:
    """Replace this process by a fresh run of the same command (keeps the PID and logs)."""
    restarts = int(os.environ.get(RESTARTS_VARIABLE, "0")) + 1
    log.error("%s; restarting the worker in place (restart %d)", reason, restarts)
    os.environ[RESTARTS_VARIABLE] = str(restarts)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    # Sockets and files Python opened are not inherited; stdout/stderr (the log) are.
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def current_member_id(app: faust.App) -> str | None:
    """The worker's member id in its consumer group, if it has joined (aiokafka internals)."""
    try:
        coordinator = app.consumer._thread._ensure_consumer()._coordinator  # type: ignore[attr-defined]
        member_id = coordinator.member_id
    except Exception:  # a restart must not depend on private attributes
        return None
    return member_id or None


def commit_under_way(app: faust.App) -> bool:
    """Whether Faust is committing now (its consumer's private commit future)."""
    return getattr(app.consumer, "_commit_fut", None) is not None


def commit_state(app: faust.App) -> str:
    """Whether a commit is under way and how many processed offsets await one (Faust
    internals, read only for the log)."""
    acked = getattr(app.consumer, "_acked", None)
    processed = sum(len(offsets) for offsets in acked.values()) if acked else 0
    commit = "a commit under way" if commit_under_way(app) else "no commit under way"
    return f"{commit}, {processed} processed offsets not committed"


def head_gaps(consumer: object) -> dict[TP, int]:
    """The partitions whose processed offsets Faust will never commit: records right
    after the committed offset were not processed, later ones were (faust#596), with
    that committed offset (Faust internals, as `Consumer._new_offset` reads them)."""
    acked: Mapping[TP, list[int]] = getattr(consumer, "_acked", None) or {}
    committed: Mapping[TP, int | None] = getattr(consumer, "_committed_offset", None) or {}
    gaps: Mapping[TP, Any] = getattr(consumer, "_gap", None) or {}
    stuck = {}
    for tp, offsets in acked.items():
        start = committed.get(tp)
        # Faust withholds a commit while min(acked) - committed > 1, unless a known gap
        # (a compacted range) covers the head.
        if offsets and start and min(offsets) - start > 1 and not gaps.get(tp):
            stuck[tp] = start
    return stuck


async def reread_head_gaps(app: faust.App) -> int:
    """Seek the partitions `head_gaps` finds back to their committed offset; how many."""
    stuck = head_gaps(app.consumer)
    if not stuck:
        return 0
    log.warning(
        "records after the committed offset of %s were never processed (a Faust recovery "
        "race, faust-streaming/faust#596); reading them again from there",
        ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in sorted(stuck.items())),
    )
    for tp, offset in stuck.items():
        await app.consumer.seek(tp, offset)
    return len(stuck)


def leave_for(bootstrap_servers: str, group: str, member_id: str | None) -> None:
    """Remove the stuck member from `group` on its behalf; a failure only costs time."""
    if member_id is None:
        return
    try:
        removed = remove_group_member(bootstrap_servers, group, member_id)
    except (KafkaError, OSError) as error:
        log.warning("could not remove member %s from %s (%s); the restarted worker "
                    "waits for its session to time out", member_id, group, error)  # fmt: skip
        return
    if removed:
        log.info("removed the stuck member %s from group %s", member_id, group)


def register_watchdog(app: faust.App, topics: StreamTopics, settings: WorkerSettings) -> None:
    """Attach the stall watch timer to `app` (unless `worker_stall_restart_seconds` is 0)."""
    limit = settings.worker_stall_restart_seconds
    if not limit:
        return
    group = app.conf.id
    watched = [t.get_topic_name() for t in (topics.raw_posts, topics.routed_posts,
                                            topics.mentions)]  # fmt: skip
    detector = StallDetector()
    timeout = max(1.0, settings.worker_stall_check_seconds * 2)

    @app.timer(interval=settings.worker_stall_check_seconds, name="stall-watchdog")
    async def watch_commits() -> None:
        now = time.monotonic()
        if app.rebalancing or app.in_recovery:
            detector.reset(now)
            return
        try:
            committed, ends = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(
                    None, group_offsets, settings.kafka_bootstrap_servers, group, watched,
                    int(timeout * 1000),
                ),
                timeout=timeout * 2,
            )  # fmt: skip
        except (KafkaError, OSError, TimeoutError) as error:  # a pause, not a stall
            log.debug("stall watch: Kafka did not answer (%s)", error)
            detector.reset(now)
            return
        assigned = {(tp.topic, tp.partition) for tp in app.assignor.assigned_actives()}
        committed, ends = own_offsets(
            assigned,
            {(tp.topic, tp.partition): offset for tp, offset in committed.items()},
            {(tp.topic, tp.partition): offset for tp, offset in ends.items()},
        )
        stalled = detector.observe(now, committed, ends)
        if stalled < limit / 2:
            return
        waiting = sum(end - committed.get(tp, 0) for tp, end in ends.items())
        if stalled < limit:
            # Half way: say what the worker is doing, so a restart can be told apart
            # from a slow commit afterwards; mend Faust's head gaps, if that is the cause.
            if not commit_under_way(app):
                await reread_head_gaps(app)
            log.warning(
                "no offset commit for %.0fs while %d records wait (%s); restart in place at %.0fs",
                stalled, waiting, commit_state(app), limit,
            )  # fmt: skip
            return
        leave_for(settings.kafka_bootstrap_servers, group, current_member_id(app))
        restart_in_place(
            f"no offset commit for {stalled:.0f}s while {waiting} records wait and Kafka "
            f"answers ({commit_state(app)}; a lost group coordinator?)"
        )
