"""Catalog parsing: the recorded Kaggle snapshot lines and OAI-PMH responses, gzip or not."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sinks.catalog import (
    CatalogProblem,
    CatalogRecord,
    bundled_seed_catalog_path,
    iter_catalog,
    iter_catalog_file,
    load_catalog_file,
)
from sinks.enrich_rules import EnrichSettings, metadata_from_source, needs_lookup
from tests.fakes.paths import REAL_FIXTURES
from trending_arxiv.cli.queries import accounts_from_follow_file

KAGGLE = REAL_FIXTURES / "arxiv_kaggle_snapshot_first200.jsonl"


def records(items: list[CatalogRecord | CatalogProblem]) -> list[CatalogRecord]:
    return [r for r in items if isinstance(r, CatalogRecord)]


def test_kaggle_snapshot_lines() -> None:
    items = list(iter_catalog_file(KAGGLE))
    assert len(records(items)) == 200
    assert not [i for i in items if isinstance(i, CatalogProblem)]
    first = records(items)[0]
    assert first.arxiv_id == "0704.0001"
    meta = first.metadata
    assert meta["title"] == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert meta["authors"][0] == "C. Balázs"
    assert meta["doi"] == "10.1103/PhysRevD.76.013009"
    assert meta["journal_ref"] == "Phys.Rev.D76:013009,2007"
    assert meta["published"] == "2007-04-02T19:18:42Z"
    assert meta["categories"] == ["hep-ph"]
    second = records(items)[1].metadata
    assert second["categories"] == ["math.CO", "cs.CG"]
    assert second["primary_category"] == "math.CO"
    assert second["updated"] == "2008-12-13T17:26:00Z"  # the latest version's date


def test_kaggle_author_suffix_kept() -> None:
    names = [a for r in records(list(iter_catalog_file(KAGGLE))) for a in r.metadata["authors"]]
    assert "Neal J. Evans II" in names


def test_gzip_is_detected_by_content(tmp_path: Path) -> None:
    packed = tmp_path / "snapshot.data"  # no .gz suffix on purpose
    packed.write_bytes(gzip.compress(KAGGLE.read_bytes()))
    assert load_catalog_file(packed) == load_catalog_file(KAGGLE)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("arxiv_oai_getrecord_arXiv_1401.2122.xml", ["1401.2122"]),
        ("arxiv_oai_listrecords_arXiv_hep-th.xml", 3),
        ("arxiv_oai_listrecords_arXiv_hep-ex.xml", 3),
    ],
)
def test_oai_pmh_records(name: str, expected: list[str] | int) -> None:
    found = records(list(iter_catalog_file(REAL_FIXTURES / name)))
    if isinstance(expected, int):
        assert len(found) == expected
    else:
        assert [r.arxiv_id for r in found] == expected
    for record in found:
        assert record.metadata["title"] and record.metadata["authors"]
        assert record.metadata["published"].endswith("T00:00:00Z")


def test_oai_record_fields() -> None:
    (record,) = records(
        list(iter_catalog_file(REAL_FIXTURES / "arxiv_oai_getrecord_arXiv_1401.2122.xml"))
    )
    meta = record.metadata
    assert meta["authors"] == ["A. Sergyeyev"]
    assert meta["doi"] == "10.1007/s11005-017-1013-4"
    assert meta["categories"][0] == meta["primary_category"] == "math.AP"
    assert meta["updated"] == "2017-10-23T00:00:00Z"


def test_bad_lines_are_problems_with_line_numbers() -> None:
    lines = KAGGLE.read_bytes().splitlines()[:3]
    broken = b"\n".join(
        [lines[0], b"{not json", b'{"id": "nonsense", "title": "x"}', b"[1, 2]", lines[1]]
    )
    items = list(iter_catalog(io.BytesIO(broken)))
    assert [r.arxiv_id for r in records(items)] == ["0704.0001", "0704.0002"]
    problems = [i for i in items if isinstance(i, CatalogProblem)]
    assert [p.position for p in problems] == [2, 3, 4]
    assert "invalid JSON" in problems[0].reason
    assert "not an arXiv id" in problems[1].reason


def test_truncated_xml_is_a_problem_not_a_crash() -> None:
    data = (REAL_FIXTURES / "arxiv_oai_listrecords_arXiv_hep-th.xml").read_bytes()
    items = list(iter_catalog(io.BytesIO(data[: len(data) // 2])))
    assert isinstance(items[-1], CatalogProblem)


def test_not_a_catalog(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("id,title\n1,2\n")
    with pytest.raises(ValueError, match="not a catalog"):
        list(iter_catalog_file(path))


def test_bundled_seed_catalog() -> None:
    catalog = load_catalog_file(bundled_seed_catalog_path())
    assert len(catalog) == 20
    paper = catalog["1602.02410"]
    assert paper["title"] == "Exploring the Limits of Language Modeling"
    assert "seed_posts" not in paper


def test_needs_lookup_rules() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    iso = lambda d: d.isoformat().replace("+00:00", "Z")  # noqa: E731
    args = (now, 7.0, 24.0)
    assert needs_lookup(None, *args)
    assert needs_lookup({"posts": {"all": 3}}, *args)
    old = {
        "metadata_status": "found",
        "published": "2016-02-07T00:00:00Z",
        "enriched_at": iso(now - timedelta(days=30)),
    }
    assert not needs_lookup(old, *args)  # never again once it is old
    recent = {
        "metadata_status": "found",
        "published": iso(now - timedelta(days=2)),
        "enriched_at": iso(now - timedelta(hours=25)),
    }
    assert needs_lookup(recent, *args)  # the daily refresh
    assert not needs_lookup({**recent, "enriched_at": iso(now - timedelta(hours=2))}, *args)
    missing = {
        "metadata_status": "not_found",
        "first_seen": iso(now - timedelta(days=1)),
        "enriched_at": iso(now - timedelta(hours=30)),
    }
    assert needs_lookup(missing, *args)
    assert not needs_lookup({**missing, "first_seen": iso(now - timedelta(days=8))}, *args)
    assert not needs_lookup(
        {"metadata_status": "not_found", "enriched_at": iso(now - timedelta(days=2))}, *args
    )


def test_metadata_from_source() -> None:
    assert metadata_from_source({"metadata_status": "not_found"}) is None
    meta = metadata_from_source(
        {"metadata_status": "found", "title": "T", "authors": [], "posts": {"all": 1}}
    )
    assert meta == {"title": "T"}


def test_enrich_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRENDING_ARXIV_API_URL", "http://127.0.0.1:1234/api/query")
    monkeypatch.setenv("TRENDING_ARXIV_DELAY_SECONDS", "0.5")
    assert EnrichSettings().enrich_recheck_seconds == 60.0
    monkeypatch.setenv("TRENDING_ENRICH_RECHECK_SECONDS", "5")
    settings = EnrichSettings()
    assert settings.arxiv_api_url == "http://127.0.0.1:1234/api/query"
    assert settings.arxiv_delay_seconds == 0.5
    assert settings.enrich_recheck_seconds == 5.0
    monkeypatch.delenv("TRENDING_ARXIV_API_URL")
    with pytest.raises(ValueError, match="3 seconds"):
        EnrichSettings()


def test_follow_files(tmp_path: Path) -> None:
    x_file = tmp_path / "alice.json"
    x_file.write_text(
        json.dumps(
            {
                "handle": "alice",
                "user_id": "1",
                "following": [{"id": "12", "username": "a"}, {"id": "34", "username": "b"}],
            }
        )
    )
    assert accounts_from_follow_file(x_file) == ["x:12", "x:34"]
    text = tmp_path / "bob.txt"
    text.write_text("# bob follows\nx:12\n\nbluesky:did:plc:abc  # a comment\n")
    assert accounts_from_follow_file(text) == ["x:12", "bluesky:did:plc:abc"]
    listed = tmp_path / "c.json"
    listed.write_text('["mastodon:1"]')
    assert accounts_from_follow_file(listed) == ["mastodon:1"]
