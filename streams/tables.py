"""Changelog-backed tables: the post ledger (dedupe, joins, deletes) and paper counts."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TableT

TABLE_NAMES = ("ledger", "papers", "paper_accounts", "alert_logs")


@dataclass(frozen=True)
class StreamTables:
    ledger: TableT
    papers: TableT
    paper_accounts: TableT
    alert_logs: TableT


def declare_tables(app: faust.App, partitions: int) -> StreamTables:
    def table(name: str, help_text: str) -> TableT:
        return app.Table(
            name,
            default=None,
            partitions=partitions,
            schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
            help=help_text,
        )

    return StreamTables(
        ledger=table("ledger", "post id -> what the post mentioned (dedupe, joins, deletes)"),
        papers=table("papers", "arXiv id -> counting summary (trending_arxiv.core.counting)"),
        paper_accounts=table(
            "paper_accounts", "'arXiv id account' -> that account's posts of the paper"
        ),
        alert_logs=table(
            "alert_logs", "arXiv id -> its recent mentions for the alert rules (core.alert_log)"
        ),
    )
