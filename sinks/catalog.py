"""Offline paper metadata: read arXiv metadata snapshots into our metadata dicts.

Formats (detected from the content, gzip or not):

* the Kaggle ``arxiv-metadata-oai-snapshot.json`` JSON lines (``id``, ``authors_parsed``,
  ``versions`` ...);
* OAI-PMH responses with ``metadataPrefix=arXiv`` (``ListRecords`` / ``GetRecord``);
* our own JSON list / JSON lines of metadata dicts keyed by ``arxiv_id`` (the bundled
  seed papers).

Pure parsing, no Elasticsearch: `sinks.catalog_loader` bulk-loads what this yields.
A record that can't be used yields a `CatalogProblem` (with its line or record number)
instead of stopping the file.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib import resources
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, Literal

import msgspec
import orjson
from lxml import etree

from trending_arxiv.core.documents import METADATA_FIELDS
from trending_arxiv.core.ids import canonicalize
from trending_arxiv.core.models import parse_utc, to_utc_iso

CatalogFormat = Literal["kaggle", "oai", "json"]
OAI_ARXIV_NS = "http://arxiv.org/OAI/arXiv/"
_AND = re.compile(r",\s*(?:and\s+)?|\s+and\s+")


@dataclass(frozen=True)
class CatalogRecord:
    """One paper's metadata (the fields of `METADATA_FIELDS`), keyed by canonical ID."""

    arxiv_id: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class CatalogProblem:
    """A record that could not be used, and where it was."""

    position: int
    reason: str


def bundled_seed_catalog_path() -> Path:
    """The metadata of the seed page's 20 papers, shipped with the package."""
    return Path(str(resources.files("trending_arxiv") / "data" / "seed_papers.json"))


def _clean(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    # split/join collapses every whitespace run; much faster than a regex on abstracts.
    return " ".join(text.split()) or None


def _squeeze(text: str) -> str:
    """`" ".join(text.split())`, three times as fast on ASCII abstracts.

    split/join makes an object per word; str.replace scans at memchr speed and returns
    the string itself when there is nothing to replace. The replaced characters are all
    that str.split() splits ASCII text on besides the space. Stripping before looking
    for double spaces matters: a snapshot abstract's only double space is mostly the
    indent it starts with, and replacing a two-character pattern is the slow part.
    """
    if not text.isascii():  # O(1): CPython keeps the flag
        return " ".join(text.split())
    # fmt: off
    text = (
        text.replace("\n", " ").replace("\t", " ").replace("\r", " ").replace("\x0b", " ")
        .replace("\x0c", " ").replace("\x1c", " ").replace("\x1d", " ").replace("\x1e", " ")
        .replace("\x1f", " ").strip(" ")
    )
    # fmt: on
    while "  " in text:
        text = text.replace("  ", " ")
    return text


def _compact(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if v not in (None, "", [])}


_MONTHS = {
    m: f"{i:02d}"
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
# Day numbers as written ("2", "02") to two digits: a lookup instead of int() and format.
_DAYS = {f"{n}": f"{n:02d}" for n in range(100)} | {f"{n:02d}": f"{n:02d}" for n in range(10)}


def _rfc2822(value: Any) -> str | None:
    """Kaggle's version dates look like 'Mon, 2 Apr 2007 19:18:42 GMT'."""
    if not isinstance(value, str):
        return None
    parts = value.split()
    if len(parts) == 6 and parts[5] == "GMT" and parts[2] in _MONTHS:
        # The snapshot's one format, read directly (email.utils is ~10x slower).
        day, year, clock = parts[1], parts[3], parts[4]
        if day.isdigit() and year.isdigit() and len(clock) == 8:
            return f"{year}-{_MONTHS[parts[2]]}-{_DAYS.get(day) or f'{int(day):02d}'}T{clock}Z"
    try:
        return to_utc_iso(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None


def _day(value: str | None) -> str | None:
    """OAI dates are days ('2014-01-09'): midnight UTC."""
    if not value:
        return None
    try:
        return to_utc_iso(datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=UTC))
    except ValueError:
        return None


def _author_name(parts: Any) -> str | None:
    """An `authors_parsed` entry, [last, first, suffix], as "first last suffix"."""
    if not isinstance(parts, list):
        return None
    ordered = parts[1:2] + parts[0:1] + parts[2:3]
    try:
        # One split/join over the joined parts equals cleaning each part and joining the
        # non-empty ones, at a third of the cost (this runs for every author of a load).
        return " ".join(" ".join(ordered).split())
    except TypeError:  # a part that is no string (null): clean part by part
        return " ".join(p for p in map(_clean, ordered) if p)


def _split_authors(authors: str) -> list[str]:
    return [a for a in (_clean(p) for p in _AND.split(authors)) if a]


def kaggle_record(data: dict[str, Any]) -> CatalogRecord:
    """One line of the Kaggle snapshot; raises ValueError when it can't be used.

    Runs for every paper of a catalog load, so fields are added as they are found (no
    compaction pass) and a single version's date is parsed once.
    """
    get = data.get
    arxiv_id = canonicalize(str(get("id") or ""))
    if arxiv_id is None:
        raise ValueError(f"not an arXiv id: {get('id')!r}")
    title = _clean(get("title"))
    if not title:
        raise ValueError(f"{arxiv_id}: no title")
    metadata: dict[str, Any] = {"title": title}
    parsed = get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        authors = [name for name in map(_author_name, parsed) if name]
    else:
        authors = _split_authors(str(get("authors") or ""))
    if authors:
        metadata["authors"] = authors
    if abstract := _clean(get("abstract")):
        metadata["abstract"] = abstract
    if categories := str(get("categories") or "").split():
        metadata["categories"] = categories
        metadata["primary_category"] = categories[0]
    versions = [v for v in get("versions") or [] if isinstance(v, dict)]
    published = _rfc2822(versions[0].get("created")) if versions else None
    updated = _rfc2822(versions[-1].get("created")) if len(versions) > 1 else published
    if updated is None and get("update_date"):
        updated = _day(str(get("update_date")))
    if published:
        metadata["published"] = published
    if updated:
        metadata["updated"] = updated
    for field, key in (("doi", "doi"), ("journal_ref", "journal-ref"), ("comment", "comments")):
        if value := _clean(get(key)):
            metadata[field] = value
    return CatalogRecord(arxiv_id, metadata)


class _KaggleVersion(msgspec.Struct):
    created: str | None = None


class _KaggleLine(msgspec.Struct, rename={"journal_ref": "journal-ref"}):
    """The fields of a Kaggle snapshot line a paper document uses; the rest is skipped.

    Typed as the snapshot writes them: a line with any other type (a number for an ID,
    a null inside `authors_parsed` ...) fails to decode and goes the lenient way.
    """

    id: str | None = None
    title: str | None = None
    authors: str | None = None
    authors_parsed: list[list[str]] | None = None
    abstract: str | None = None
    categories: str | None = None
    versions: list[_KaggleVersion] | None = None
    update_date: str | None = None
    doi: str | None = None
    journal_ref: str | None = None
    comments: str | None = None


_decode_kaggle_line = msgspec.json.Decoder(_KaggleLine).decode
_first_last_suffix = itemgetter(1, 0, 2)
#: Between authors while their names are cleaned together: not whitespace, never in a name.
_NAME_GAP = "\x00"


def _author_names(parsed: list[list[str]]) -> list[str]:
    """`_author_name` of every entry, empty names left out, cleaned in one pass.

    Entries of fewer than three parts go one by one, as does a name holding the gap.
    """
    try:
        joined = _NAME_GAP.join(map(" ".join, map(_first_last_suffix, parsed)))
    except IndexError:
        return [name for name in map(_author_name, parsed) if name]
    if joined.count(_NAME_GAP) >= len(parsed):  # a part holds one itself
        return [name for name in map(_author_name, parsed) if name]
    # Whitespace around a gap is left as one space, which strip() then removes.
    return list(filter(None, map(str.strip, _squeeze(joined).split(_NAME_GAP))))


def _kaggle_fast(line: _KaggleLine) -> CatalogRecord | None:
    """`kaggle_record` of a typed line; None when it would raise (the caller goes the
    lenient way, which says why)."""
    arxiv_id = canonicalize(line.id or "")
    title = line.title
    if arxiv_id is None or not title or not (title := _squeeze(title)):
        return None
    metadata: dict[str, Any] = {"title": title}
    if line.authors_parsed:
        authors = _author_names(line.authors_parsed)
    else:
        authors = _split_authors(line.authors or "")
    if authors:
        metadata["authors"] = authors
    if line.abstract and (abstract := _squeeze(line.abstract)):
        metadata["abstract"] = abstract
    if line.categories and (categories := line.categories.split()):
        metadata["categories"] = categories
        metadata["primary_category"] = categories[0]
    versions = line.versions
    published = _rfc2822(versions[0].created) if versions else None
    updated = _rfc2822(versions[-1].created) if versions and len(versions) > 1 else published
    if updated is None and line.update_date:
        updated = _day(line.update_date)
    if published:
        metadata["published"] = published
    if updated:
        metadata["updated"] = updated
    if line.doi and (doi := _squeeze(line.doi)):
        metadata["doi"] = doi
    if line.journal_ref and (journal_ref := _squeeze(line.journal_ref)):
        metadata["journal_ref"] = journal_ref
    if line.comments and (comment := _squeeze(line.comments)):
        metadata["comment"] = comment
    return CatalogRecord(arxiv_id, metadata)


def _iter_kaggle(lines: Iterable[bytes]) -> Iterator[CatalogRecord | CatalogProblem]:
    """Kaggle snapshot lines: typed msgspec decoding of the used fields only; any line
    that doesn't fit it (bad JSON, other types, no ID or title) goes the lenient way,
    so the two give the same records and problems."""
    for number, line in enumerate(lines, start=1):
        try:
            record = _kaggle_fast(_decode_kaggle_line(line))
        except (msgspec.DecodeError, ValueError, TypeError, KeyError, AttributeError):
            record = None
        if record is not None:
            yield record
        elif line.strip():
            yield _kaggle_lenient(number, line)


def _kaggle_lenient(number: int, line: bytes) -> CatalogRecord | CatalogProblem:
    try:
        data = _json_line(line)
    except ValueError as error:
        return CatalogProblem(number, f"invalid JSON: {error}")
    return _convert(number, data, kaggle_record)


def own_record(data: dict[str, Any]) -> CatalogRecord:
    """A metadata dict of our own format (the bundled seed papers)."""
    arxiv_id = canonicalize(str(data.get("arxiv_id") or data.get("id") or ""))
    if arxiv_id is None:
        raise ValueError(f"not an arXiv id: {data.get('arxiv_id') or data.get('id')!r}")
    metadata: dict[str, Any] = {}
    for name in METADATA_FIELDS:
        value = data.get(name)
        if name in ("published", "updated") and isinstance(value, str):
            value = to_utc_iso(parse_utc(value))
        metadata[name] = value
    if isinstance(metadata.get("authors"), str):
        metadata["authors"] = _split_authors(metadata["authors"])
    if isinstance(metadata.get("categories"), str):
        metadata["categories"] = metadata["categories"].split()
    if not metadata.get("primary_category") and metadata.get("categories"):
        metadata["primary_category"] = metadata["categories"][0]
    return CatalogRecord(arxiv_id, _compact(metadata))


def oai_record(element: Any) -> CatalogRecord:
    """One `<arXiv>` metadata element of an OAI-PMH response."""

    def text(name: str, parent: Any = element) -> str | None:
        found = parent.find(f"{{{OAI_ARXIV_NS}}}{name}")
        return None if found is None else _clean("".join(found.itertext()))

    arxiv_id = canonicalize(text("id") or "")
    if arxiv_id is None:
        raise ValueError(f"not an arXiv id: {text('id')!r}")
    authors = []
    for author in element.iterfind(f"{{{OAI_ARXIV_NS}}}authors/{{{OAI_ARXIV_NS}}}author"):
        parts = [text(n, author) for n in ("forenames", "keyname", "suffix")]
        name = " ".join(p for p in parts if p)
        if name:
            authors.append(name)
    categories = (text("categories") or "").split()
    metadata = {
        "title": text("title"),
        "authors": authors,
        "abstract": text("abstract"),
        "categories": categories,
        "primary_category": categories[0] if categories else None,
        "published": _day(text("created")),
        "updated": _day(text("updated")) or _day(text("created")),
        "doi": text("doi"),
        "journal_ref": text("journal-ref"),
        "comment": text("comments"),
    }
    if not metadata["title"]:
        raise ValueError(f"{arxiv_id}: no title")
    return CatalogRecord(arxiv_id, _compact(metadata))


#: Reads from a file this big: few calls into a wrapper such as the progress bar's.
READ_BUFFER = 1 << 20


def _peekable(stream: IO[bytes]) -> Any:
    if hasattr(stream, "peek"):
        return stream
    return io.BufferedReader(stream, buffer_size=READ_BUFFER)  # type: ignore[arg-type]


def open_catalog(raw: IO[bytes]) -> IO[bytes]:
    """A peekable stream of the catalog's bytes, gunzipped when it is gzip (any name)."""
    buffered = _peekable(raw)
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        return _peekable(gzip.GzipFile(fileobj=buffered, mode="rb"))  # type: ignore[arg-type]
    return buffered  # type: ignore[no-any-return]


def detect_format(stream: IO[bytes]) -> CatalogFormat:
    """Sniff the first non-blank byte(s) of a buffered stream without consuming it."""
    head = _peekable(stream).peek(4096)[:4096]
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "oai"
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        first = text.split(b"\n", 1)[0]
        return "kaggle" if b'"authors_parsed"' in first or b'"versions"' in first else "json"
    raise ValueError("not a catalog: expected JSON lines, a JSON list or OAI-PMH XML")


def iter_catalog(stream: IO[bytes]) -> Iterator[CatalogRecord | CatalogProblem]:
    """Records (or problems) of a catalog stream, in file order."""
    buffered = _peekable(stream)
    kind = detect_format(buffered)
    if kind == "oai":
        yield from _iter_oai(buffered)
    elif kind == "json" and buffered.peek(64).lstrip().startswith(b"["):
        try:
            records = json.load(buffered)
        except ValueError as error:
            yield CatalogProblem(0, f"invalid JSON: {error}")
            return
        for number, data in enumerate(records, start=1):
            yield _convert(number, data, own_record)
    elif kind == "kaggle":
        yield from _iter_kaggle(buffered)
    else:
        for number, line in enumerate(buffered, start=1):
            if not line.strip():
                continue
            try:
                data = _json_line(line)
            except ValueError as error:
                yield CatalogProblem(number, f"invalid JSON: {error}")
                continue
            record = _convert(number, data, own_record)
            if isinstance(record, CatalogRecord):
                yield record
            else:  # lines of our own format may carry Kaggle keys too
                yield _convert(number, data, kaggle_record)


def _json_line(line: bytes) -> Any:
    """One JSON line: orjson (several times faster), else the lenient standard parser.

    orjson refuses a few things `json` accepts (NaN, lone surrogates); such a line is
    still read rather than reported as a problem.
    """
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def _convert(number: int, data: Any, convert: Any) -> CatalogRecord | CatalogProblem:
    if not isinstance(data, dict):
        return CatalogProblem(number, "not a JSON object")
    try:
        record: CatalogRecord = convert(data)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        return CatalogProblem(number, str(error))
    return record


def _iter_oai(stream: IO[bytes]) -> Iterator[CatalogRecord | CatalogProblem]:
    number = 0
    context = etree.iterparse(
        stream,
        events=("end",),
        tag=f"{{{OAI_ARXIV_NS}}}arXiv",
        resolve_entities=False,
        no_network=True,
        huge_tree=True,
    )
    try:
        for _event, element in context:
            number += 1
            try:
                yield oai_record(element)
            except ValueError as error:
                yield CatalogProblem(number, str(error))
            element.clear()
    except etree.XMLSyntaxError as error:
        yield CatalogProblem(number + 1, f"invalid XML: {error}")


def iter_catalog_file(path: Path) -> Iterator[CatalogRecord | CatalogProblem]:
    """Records of a catalog file (gzip or not); raises ValueError for unknown formats."""
    with path.open("rb") as raw:
        yield from iter_catalog(open_catalog(raw))


def load_catalog_file(path: Path) -> dict[str, dict[str, Any]]:
    """Every usable record of a (small) catalog file, keyed by canonical arXiv id."""
    return {
        record.arxiv_id: record.metadata
        for record in iter_catalog_file(path)
        if isinstance(record, CatalogRecord)
    }
