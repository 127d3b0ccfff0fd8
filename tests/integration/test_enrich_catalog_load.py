"""`catalog load` into the real Elasticsearch: the recorded Kaggle and OAI-PMH samples."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from sinks.catalog_loader import BulkChunk, BulkPipeline, LoadSummary, load_catalog
from sinks.indices import ensure_indices
from trending_arxiv.cli.queries import catalog_app
from trending_arxiv.search.papers import SearchQuery, search_papers
from trending_arxiv.settings import CommonSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def env(namespace: str, stack_endpoints: tuple[str, str]) -> tuple[Elasticsearch, CommonSettings]:
    settings = CommonSettings(namespace=namespace, elasticsearch_url=stack_endpoints[1])
    return Elasticsearch(**settings.elasticsearch_client_kwargs()), settings


@pytest.mark.parametrize("threads", [1, 2])
def test_kaggle_load_keeps_counts_of_known_papers(
    env: tuple[Elasticsearch, CommonSettings], real_fixtures: Path, threads: int
) -> None:
    es, settings = env
    ensure_indices(es, settings)
    counts = {
        "arxiv_id": "0704.0001",
        "posts": {"all": 7},
        "accounts": {"all": 5},
        "trend_score": 1.5,
        "metadata_status": "not_found",
    }
    es.index(index=settings.indices.papers, id="0704.0001", document=counts, refresh=True)

    summary = load_catalog(
        es,
        settings,
        real_fixtures / "arxiv_kaggle_snapshot_first200.jsonl",
        threads=threads,
        chunk_size=50,
    )
    assert (summary.records, summary.created, summary.updated) == (200, 199, 1)
    assert summary.problems == summary.rejected == 0
    assert es.count(index=settings.indices.papers)["count"] == 200

    paper = es.get(index=settings.indices.papers, id="0704.0001")["_source"]
    assert paper["posts"] == {"all": 7} and paper["trend_score"] == 1.5  # counts kept
    assert paper["metadata_status"] == "found" and paper["metadata_source"] == "catalog"
    assert paper["title"].startswith("Calculation of prompt diphoton")
    assert paper["doi"] == "10.1103/PhysRevD.76.013009"

    again = load_catalog(
        es,
        settings,
        real_fixtures / "arxiv_kaggle_snapshot_first200.jsonl",
        threads=threads,
        chunk_size=50,
    )
    assert again.created == 0 and again.written == 200
    assert es.count(index=settings.indices.papers)["count"] == 200
    rows = search_papers(es, settings, SearchQuery("diphoton", category="hep-ph"))
    assert rows[0]["arxiv_id"] == "0704.0001"


def test_small_chunks_duplicates_and_refresh_interval_restored(
    env: tuple[Elasticsearch, CommonSettings], real_fixtures: Path, tmp_path: Path
) -> None:
    es, settings = env
    ensure_indices(es, settings)
    lines = (real_fixtures / "arxiv_kaggle_snapshot_first200.jsonl").read_bytes().splitlines()
    newer = dict(json.loads(lines[0]), title="A newer title")
    path = tmp_path / "duplicates.jsonl"
    path.write_bytes(b"\n".join([*lines[:50], json.dumps(newer).encode()]) + b"\n")

    summary = load_catalog(es, settings, path, threads=2, chunk_size=7, chunk_bytes=4096)
    assert (summary.records, summary.created, summary.updated, summary.rejected) == (51, 50, 1, 0)
    assert es.count(index=settings.indices.papers)["count"] == 50  # refreshed at the end
    paper = es.get(index=settings.indices.papers, id="0704.0001")["_source"]
    assert paper["title"] == "A newer title"  # the later record of the file wins
    found = es.indices.get_settings(
        index=settings.indices.papers, name="index.refresh_interval", flat_settings=True
    )
    assert next(iter(found.values()))["settings"]["index.refresh_interval"] == "1s"


def test_gzip_and_oai_files(
    env: tuple[Elasticsearch, CommonSettings], real_fixtures: Path, tmp_path: Path
) -> None:
    es, settings = env
    packed = tmp_path / "snapshot.jsonl.gz"
    packed.write_bytes(
        gzip.compress((real_fixtures / "arxiv_kaggle_snapshot_first200.jsonl").read_bytes())
    )
    assert load_catalog(es, settings, packed).created == 200
    for name in (
        "arxiv_oai_listrecords_arXiv_hep-th.xml",
        "arxiv_oai_listrecords_arXiv_hep-ex.xml",
        "arxiv_oai_getrecord_arXiv_1401.2122.xml",
    ):
        summary = load_catalog(es, settings, real_fixtures / name)
        assert summary.written == summary.records > 0
    assert es.count(index=settings.indices.papers)["count"] == 207
    paper = es.get(index=settings.indices.papers, id="1401.2122")["_source"]
    assert paper["authors"] == ["A. Sergyeyev"]
    assert paper["categories"][0] == "math.AP"


def test_cli_load_with_progress_and_bad_lines(
    env: tuple[Elasticsearch, CommonSettings], real_fixtures: Path, tmp_path: Path
) -> None:
    es, settings = env
    lines = (real_fixtures / "arxiv_kaggle_snapshot_first200.jsonl").read_bytes().splitlines()
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join([*lines[:10], b"{broken", *lines[10:20]]) + b"\n")
    runner = CliRunner()
    env_vars = {
        "TRENDING_NAMESPACE": settings.namespace,
        "ELASTICSEARCH_URL": settings.elasticsearch_url,
    }
    result = runner.invoke(catalog_app, ["load", str(mixed)], env=env_vars)
    assert result.exit_code == 0, result.output
    assert "records read" in result.output and "unusable records" in result.output
    assert "record 11: invalid JSON" in result.output
    assert es.count(index=settings.indices.papers)["count"] == 20

    # A long path: the error keeps it on one line (no wrapping inside it) for copy-paste.
    absent = tmp_path / ("nope-" + "x" * 120 + ".jsonl")
    missing = runner.invoke(catalog_app, ["load", str(absent)], env=env_vars)
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert str(absent) in missing.output
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n")
    bad = runner.invoke(catalog_app, ["load", str(junk)], env=env_vars)
    assert bad.exit_code == 2 and "not a catalog" in bad.output


def test_bulk_pipeline_tallies_real_outcomes(env: tuple[Elasticsearch, CommonSettings]) -> None:
    """Created, conflict (already there), rejected (bad date), unchanged and updated."""
    es, settings = env
    ensure_indices(es, settings)
    index = settings.indices.papers
    es.index(index=index, id="2401.00001", document={"arxiv_id": "2401.00001", "title": "Old"})
    summary = LoadSummary(path="x")
    pipeline = BulkPipeline(es, index, 2, summary)
    try:
        creates = BulkChunk("create")
        creates.add("2401.00000", b'{"arxiv_id":"2401.00000","title":"New"}')
        creates.add("2401.00001", b'{"arxiv_id":"2401.00001","title":"Newer"}')
        creates.add("2401.00002", b'{"arxiv_id":"2401.00002","published":"not a date"}')
        pipeline.submit(creates)
        pipeline.drain()
        assert [arxiv_id for arxiv_id, _ in pipeline.conflicts] == ["2401.00001"]
        updates = BulkChunk("update")
        updates.add("2401.00000", b'{"title":"New"}')  # same as stored: noop
        updates.add("2401.00001", b'{"title":"Newer"}')
        pipeline.submit(updates)
        pipeline.drain()
    finally:
        pipeline.close()
    assert (summary.created, summary.unchanged, summary.updated) == (1, 1, 1)
    assert summary.rejected == 1 and "2401.00002" in summary.examples[0]
    assert es.get(index=index, id="2401.00001")["_source"]["title"] == "Newer"
