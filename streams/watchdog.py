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

Records a recovery race left unprocessed also stop a partition's commits; those are read
again long before this watch acts (`streams.offsets`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

import faust
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
            # from a slow commit afterwards.
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
