"""The catalog load's fast path gives the documents the lenient path gives.

The lenient path is the reference: each line parsed by orjson (or json), made a record by
`kaggle_record`, a document by `metadata_document` plus the loader's two fields, then
`orjson.dumps`. The fast path (typed msgspec decoding, `_squeeze`, names cleaned in one
pass, the document's tail written as bytes) must give the same bytes, or the same problem.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinks.catalog import (
    CatalogProblem,
    CatalogRecord,
    _author_name,
    _author_names,
    _convert,
    _json_line,
    _rfc2822,
    _squeeze,
    iter_catalog,
    kaggle_record,
)
from sinks.catalog_loader import LoadSummary, catalog_documents
from tests.fakes.paths import REAL_FIXTURES
from trending_arxiv.core.documents import METADATA_FIELDS, metadata_document
from trending_arxiv.core.models import to_utc_iso

KAGGLE = REAL_FIXTURES / "arxiv_kaggle_snapshot_first200.jsonl"
LOADED_AT = datetime(2026, 12, 5, 16, 0, 1, 250000, tzinfo=UTC)
# Every character str.split() splits on, ASCII and not, and some that look like it but aren't.
ASCII_BLANKS = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
BLANKS = ASCII_BLANKS + "\x85\xa0\u1680\u2000\u2003\u200a\u2028\u2029\u202f\u205f\u3000"
# The machine running the tests is shared: no timing health checks, no deadlines.
RELAXED = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
TEXT = st.text(alphabet=st.sampled_from(BLANKS + "ab.á\u200b\x00"), max_size=40)


def reference(lines: list[bytes]) -> list[tuple[str, bytes] | str]:
    """What the loader sends for each line the lenient way (a problem's reason else)."""
    out: list[tuple[str, bytes] | str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = _convert(number, _json_line(line), kaggle_record)
        except ValueError as error:
            out.append(f"record {number}: invalid JSON: {error}")
            continue
        if isinstance(record, CatalogProblem):
            out.append(f"record {number}: {record.reason}")
            continue
        doc = metadata_document(record.arxiv_id, record.metadata)
        doc["metadata_source"] = "catalog"
        doc["enriched_at"] = to_utc_iso(LOADED_AT)
        try:
            out.append((record.arxiv_id, orjson.dumps(doc)))
        except orjson.JSONEncodeError as error:
            out.append(f"{record.arxiv_id}: {error}")
    return out


def loaded(lines: list[bytes]) -> list[tuple[str, bytes] | str]:
    """What the loader sends for each line, problems as their notes, in file order."""
    summary = LoadSummary(path="test")
    stream = io.BytesIO(b"".join(lines))
    sent: list[tuple[str, bytes] | str] = []
    noted = 0
    for document in catalog_documents(iter_catalog(stream), summary, LOADED_AT):
        sent += summary.examples[noted:]  # the problems met before this document
        noted = len(summary.examples)
        sent.append(document)
    return sent + summary.examples[noted:]


def kaggle_line(**fields: Any) -> bytes:
    line = {
        "id": "2401.00001",
        "submitter": "A. Person",
        "authors": "A. Person and B. Other",
        "title": "A title",
        "comments": None,
        "journal-ref": None,
        "doi": None,
        "report-no": None,
        "categories": "cs.LG stat.ML",
        "license": None,
        "abstract": "  An abstract.\n",
        "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}],
        "update_date": "2024-01-02",
        "authors_parsed": [["Person", "A.", ""], ["Other", "B.", ""]],
    }
    line.update(fields)
    return json.dumps(line).encode()


def test_real_snapshot_lines_give_the_same_bytes() -> None:
    lines = KAGGLE.read_bytes().splitlines(keepends=True)
    sent = loaded(lines)
    assert len(sent) == 200 and all(isinstance(item, tuple) for item in sent)
    assert sent == reference(lines)
    # And the bytes are a JSON document equal to metadata_document's.
    first = sent[0]
    assert isinstance(first, tuple)
    arxiv_id, source = first
    assert orjson.loads(source)["abs_url"] == f"https://arxiv.org/abs/{arxiv_id}"


EDGE_CASES = {
    "every kind of blank": kaggle_line(
        title="\tA\x0bB\x0cC\x1cD\x1dE\x1eF\x1fG\rH\u2003I\xa0J  ",
        abstract=" one\n  two\r\n\tthree  four\n\n",
        comments="\n  ",
        doi=" 10.1/x ",
        **{"journal-ref": "J.\u3000Phys."},
    ),
    "non-ASCII names": kaggle_line(
        authors_parsed=[["Balázs", "C.", ""], ["Müller", " J\u2003K.", "Jr"]]
    ),
    "entries of one, two and four parts": kaggle_line(
        authors_parsed=[["Solo"], ["Last", "First"], ["Evans", "Neal J.", "II", ""]]
    ),
    "null parts": kaggle_line(authors_parsed=[["Last", None, ""], [None, None, None]]),
    "a NUL in a name": kaggle_line(authors_parsed=[["A\u0000B", "C", ""], ["D", "E", ""]]),
    "empty names dropped": kaggle_line(authors_parsed=[[" ", "", ""], ["D", "E", ""]]),
    "no authors_parsed": kaggle_line(authors_parsed=[], authors="A. One, B. Two and C. Three"),
    "authors_parsed not a list": kaggle_line(authors_parsed="Person"),
    "no versions, update_date": kaggle_line(versions=[]),
    "versions not objects": kaggle_line(versions=["v1", {"created": None}]),
    "three versions": kaggle_line(
        versions=[
            {"created": "Tue, 02 Apr 2007 19:18:42 GMT"},
            {"created": "Wed, 3 Apr 2007 01:00:00 GMT"},
            {"created": "Sat, 13 Dec 2008 17:26:00 +0100"},
        ]
    ),
    "a day int() refuses": kaggle_line(versions=[{"created": "Mon, ² Apr 2007 19:18:42 GMT"}]),
    "a date of another form": kaggle_line(versions=[{"created": "2 Apr 2007 19:18:42 -0500"}]),
    "no date at all": kaggle_line(versions=None, update_date=None),
    "a numeric id": kaggle_line(id=704.0001),
    "an old-style id": kaggle_line(id="math.GT/0211159"),
    "not an id": kaggle_line(id="hello"),
    "no title": kaggle_line(title=" \n "),
    "a numeric title": kaggle_line(title=7),
    "empty categories": kaggle_line(categories=" "),
    "NaN somewhere": kaggle_line(license=float("nan")),
    "a lone surrogate": b'{"id": "2401.00002", "title": "Bad \\ud800 title", "versions": []}',
    "duplicate keys": b'{"id": "2401.00003", "title": "first", "title": "second", "versions": []}',
    "not an object": b"[1, 2]",
    "broken JSON": b'{"id": "2401.0',
    "a BOM": b"\xef\xbb\xbf" + kaggle_line(id="2401.00004"),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases_as_the_lenient_path(name: str) -> None:
    # A first ordinary line: the file is recognised as Kaggle's snapshot, as a real one is.
    lines = [kaggle_line(id="2401.09999"), EDGE_CASES[name], b"", kaggle_line(id="2402.00001")]
    lines = [line + b"\n" for line in lines]
    assert loaded(lines) == reference(lines)


def test_a_lone_surrogate_is_a_problem_not_a_crash() -> None:
    sent = loaded([kaggle_line() + b"\n", EDGE_CASES["a lone surrogate"]])
    assert isinstance(sent[0], tuple)
    assert isinstance(sent[1], str) and sent[1].startswith("2401.00002:")


@RELAXED
@given(TEXT)
def test_squeeze_is_split_and_join(text: str) -> None:
    assert _squeeze(text) == " ".join(text.split())


@RELAXED
@given(st.lists(st.lists(TEXT, min_size=0, max_size=5), max_size=6))
def test_names_cleaned_together_as_one_by_one(parsed: list[list[str]]) -> None:
    assert _author_names(parsed) == [name for name in map(_author_name, parsed) if name]


@RELAXED
@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)))
def test_snapshot_dates_read_as_email_utils_reads_them(moment: datetime) -> None:
    written = format_datetime(moment.replace(microsecond=0, tzinfo=UTC), usegmt=True)
    assert _rfc2822(written) == to_utc_iso(parsedate_to_datetime(written))
    # The snapshot also writes days without the leading zero.
    unpadded = written.replace(" 0", " ", 1)
    assert _rfc2822(unpadded) == to_utc_iso(parsedate_to_datetime(unpadded))


METADATA_VALUES = st.one_of(
    st.none(), st.text(max_size=5), st.lists(st.text(max_size=3), max_size=2), st.integers(0, 1)
)


@RELAXED
@given(
    st.dictionaries(st.sampled_from([*METADATA_FIELDS, "other"]), METADATA_VALUES, max_size=6),
    st.sampled_from(["2401.00001", "math/0211159"]),
)
def test_documents_of_any_metadata_equal_metadata_document(
    metadata: dict[str, Any], arxiv_id: str
) -> None:
    """Records of every format (OAI, our own JSON) go through the same document bytes."""
    summary = LoadSummary(path="test")
    [(_, source)] = catalog_documents([CatalogRecord(arxiv_id, metadata)], summary, LOADED_AT)
    doc = metadata_document(arxiv_id, metadata)
    doc["metadata_source"] = "catalog"
    doc["enriched_at"] = to_utc_iso(LOADED_AT)
    assert source == orjson.dumps(doc)
