"""The worker's timers: raw-progress reports and repost expiry, dedupe retention, count
refresh (in stream time)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from streams.context import WorkerContext
from streams.direct_table import key_partition
from streams.progress import expiry_stream_times, report_progress, report_promises
from trending_arxiv.core import counting
from trending_arxiv.core.ledger import PENDING_PREFIX

log = logging.getLogger(__name__)


def stream_time(worker: WorkerContext) -> datetime | None:
    """The watermark; just restarted with nothing new yet, the newest paper's last post."""
    worker.sync_assignment()
    now = worker.watermark.current()
    if now is None:
        lasts = [last for s in worker.summaries.values() if s and (last := s["last"])]
        if lasts:
            # Resume stream time from the tables (as if that post was just read).
            worker.watermark.observe_epoch(-1, max(lasts))
            now = worker.watermark.current()
    return now


def register(worker: WorkerContext) -> None:
    app, settings, metrics = worker.app, worker.settings, worker.metrics
    partitions = settings.topic_partitions

    @app.timer(interval=settings.worker_stall_check_seconds, name="lost-last-records")
    async def read_lost_last_records_again() -> None:
        """A record lost with none after it (`streams.offsets`) is read again."""
        await worker.in_order.send_back_stalled(3 * settings.worker_stall_check_seconds)

    @app.timer(interval=settings.progress_report_seconds, name="report-raw-progress")
    async def report_raw_progress() -> None:
        """Tell every ledger partition how far this worker has parsed its raw partitions,
        and every mentions partition what this worker's mentions still to come promise."""
        await report_progress(worker)
        await report_promises(worker)

    @app.timer(interval=settings.repost_expiry_check_seconds, name="expire-pending-reposts")
    async def expire_pending_reposts() -> None:
        """Drop reposts that waited too long for their subject (memory bound; counted).

        Each ledger partition's stream time covers every raw partition, whichever
        worker reads it (`streams.progress`): a subject still unread anywhere holds it.
        """
        times = await expiry_stream_times(worker)
        if not any(moment is not None for moment in times.values()):
            return
        expired = worker.ledger.expire_pending_at(
            lambda subject: times.get(key_partition(subject, partitions))
        )
        # No await since the sweep: only its own writes are pending in the table view.
        await worker.ledger_table.flush(
            lambda key: key_partition(key[len(PENDING_PREFIX) :], partitions)
        )
        metrics.add("ledger.expired_reposts", expired)

    @app.timer(interval=settings.dedupe_prune_seconds, name="forget-old-dedupe-entries")
    async def forget_old_dedupe_entries() -> None:
        """Forget posts stored longer ago than the dedupe retention (bounds the ledger).

        One synchronous sweep over the ledger (about a second per million entries here),
        so every write flushed below is a delete of this sweep.
        """
        now = worker.watermark.current()
        if now is None:
            return
        cutoff = now - timedelta(days=settings.dedupe_retention_days)
        dropped = worker.ledger.forget_before(cutoff, worker.owns())
        await worker.ledger_table.flush(lambda key: key_partition(dropped[key], partitions))
        metrics.add("ledger.forgotten", len(dropped))

    @app.timer(interval=settings.counts_refresh_seconds, name="refresh-counts")
    async def refresh_counts() -> None:
        """Re-publish the counts of papers whose windows changed since their last update,
        so windows decay without new posts."""
        assignment = set(app.assignor.assigned_actives())
        if assignment != worker.refreshed_for:
            worker.refresh.reset()  # papers that came back may have changed elsewhere
            worker.refreshed_for.clear()
            worker.refreshed_for.update(assignment)
        as_of = stream_time(worker)
        if as_of is None:
            log.debug("no stream time yet; nothing to refresh")
            return
        refreshed = 0
        papers = worker.summaries
        for arxiv_id in worker.refresh.due(papers, as_of, worker.owns()):
            state = papers.get(arxiv_id)
            if not state:
                continue
            update = counting.count_update(arxiv_id, state, as_of, settings.trend_half_life_hours)
            worker.refresh.schedule(arxiv_id, state, as_of)
            await worker.send(worker.topics.counts, arxiv_id.encode(), update.to_json_bytes())
            refreshed += 1
        metrics.add("count.refreshed", refreshed)
        log.info(
            "refreshed counts of %d papers as of %s; metrics %s",
            refreshed,
            as_of,
            metrics.snapshot(),
        )
