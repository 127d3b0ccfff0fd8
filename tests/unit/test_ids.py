"""arXiv ID canonicalisation and extraction: every accepted form and every trap."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trending_arxiv.core import ids
from trending_arxiv.core.ids import (
    OLD_ARCHIVES,
    arxiv_id_from_url,
    arxiv_ids_in_text,
    canonicalize,
    extract_arxiv_ids,
)

# ---------------------------------------------------------------------------------
# canonicalize
# ---------------------------------------------------------------------------------

CANONICAL = [
    ("1602.02410", "1602.02410"),
    ("arXiv:1602.02410v2", "1602.02410"),
    ("ARXIV:1602.02410", "1602.02410"),
    ("arxiv: 2401.12345v10", "2401.12345"),
    ("  2401.12345  ", "2401.12345"),
    ("0704.0001", "0704.0001"),  # the first new-style ID
    ("1412.9999", "1412.9999"),  # last 4-digit month
    ("1501.00001", "1501.00001"),  # first 5-digit month
    ("hep-th/9711200", "hep-th/9711200"),
    ("hep-th/9711200v1", "hep-th/9711200"),
    ("arXiv:hep-th/9711200", "hep-th/9711200"),
    ("math.GT/0211159", "math/0211159"),
    ("cond-mat.str-el/0101001", "cond-mat/0101001"),
    ("physics.optics/0612001", "physics/0612001"),
    ("HEP-TH/9711200", "hep-th/9711200"),
    ("hep-th/9108001", "hep-th/9108001"),  # arXiv's first month
    ("astro-ph/0703001", "astro-ph/0703001"),  # last old-style month
]

NOT_IDS = [
    "",
    "   ",
    "abc",
    "2413.12345",  # month 13
    "2400.12345",  # month 00
    "1313.1234",
    "0703.1234",  # before new-style IDs began
    "1501.1234",  # 4 digits after 1501
    "2401.1234",
    "1412.12345",  # 5 digits before 1501
    "2401.123",  # too few digits
    "2401.123456",  # too many digits
    "0000.0000",
    "2401.00000",  # sequence number 0
    "9912.12345",  # far future
    "foo/9711200",  # not an archive
    "q-fin/0701001",  # q-fin never had old-style IDs
    "hep-th/0704001",  # after old-style IDs ended
    "hep-th/9107001",  # before arXiv began
    "hep-th/9713001",  # month 13
    "hep-th/9711000",  # number 000
    "hep-th/971120",  # 6 digits
    "hep-th/97112001",
    "2401.12345extra",
    "arXiv:",
    "10.1101/2024.01.12.575432",
]


@pytest.mark.parametrize(("raw", "expected"), CANONICAL)
def test_canonicalize_accepts(raw: str, expected: str) -> None:
    assert canonicalize(raw) == expected


@pytest.mark.parametrize("raw", NOT_IDS)
def test_canonicalize_rejects(raw: str) -> None:
    assert canonicalize(raw) is None


def test_canonicalize_non_string_is_none() -> None:
    assert canonicalize(None) is None  # type: ignore[arg-type]
    assert canonicalize(1602.02410) is None  # type: ignore[arg-type]


def test_current_month_is_valid_and_far_future_is_not() -> None:
    now = datetime.now(UTC)
    yymm = f"{now.year % 100:02d}{now.month:02d}"
    assert canonicalize(f"{yymm}.00001") == f"{yymm}.00001"
    assert canonicalize(f"{(now.year + 2) % 100:02d}01.00001") is None


# ---------------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------------

URLS = [
    ("https://arxiv.org/abs/2401.12345", "2401.12345"),
    ("https://arxiv.org/abs/2401.12345v2", "2401.12345"),
    ("http://arxiv.org/abs/1602.02410", "1602.02410"),
    ("arxiv.org/abs/2401.12345", "2401.12345"),
    ("https://www.arxiv.org/abs/2401.12345", "2401.12345"),
    ("https://export.arxiv.org/abs/2401.12345", "2401.12345"),
    ("https://browse.arxiv.org/abs/2401.12345v3", "2401.12345"),
    ("https://arxiv.org/pdf/2401.12345", "2401.12345"),
    ("https://arxiv.org/pdf/2401.12345v2", "2401.12345"),
    ("https://arxiv.org/pdf/2401.12345.pdf", "2401.12345"),
    ("https://arxiv.org/pdf/2401.12345v2.pdf", "2401.12345"),
    ("https://arxiv.org/html/2401.12345v1", "2401.12345"),
    ("https://arxiv.org/html/2401.12345v1#S3.SS2", "2401.12345"),
    ("https://arxiv.org/abs/2401.12345?context=cs.LG", "2401.12345"),
    ("https://arxiv.org/abs/2401.12345v2?utm_source=x#abstract", "2401.12345"),
    ("https://arxiv.org/abs/2401.12345/", "2401.12345"),
    ("HTTPS://ARXIV.ORG/ABS/2401.12345V2", "2401.12345"),
    ("  https://arxiv.org/abs/2401.12345 ", "2401.12345"),
    ("https://arxiv.org/abs/0704.0001", "0704.0001"),
    ("https://arxiv.org/abs/1412.3555", "1412.3555"),
    ("https://arxiv.org/abs/hep-th/9711200", "hep-th/9711200"),
    ("https://arxiv.org/abs/hep-th/9711200v3", "hep-th/9711200"),
    ("https://arxiv.org/pdf/astro-ph/0601001v1.pdf", "astro-ph/0601001"),
    ("https://arxiv.org/abs/math.GT/0211159", "math/0211159"),
    ("https://doi.org/10.48550/arXiv.2401.12345", "2401.12345"),
    ("https://doi.org/10.48550/ARXIV.1602.02410", "1602.02410"),
    ("https://dx.doi.org/10.48550/arXiv.2401.12345", "2401.12345"),
    ("https://www.alphaxiv.org/abs/2401.12345", "2401.12345"),
    ("https://alphaxiv.org/abs/2401.12345v2", "2401.12345"),
    ("https://www.alphaxiv.org/overview/2401.12345", "2401.12345"),
    ("https://huggingface.co/papers/2401.12345", "2401.12345"),
    ("https://huggingface.co/papers/2401.12345#community", "2401.12345"),
    ("https://ar5iv.org/abs/1602.02410", "1602.02410"),
    ("https://ar5iv.org/html/1602.02410", "1602.02410"),
    ("https://ar5iv.labs.arxiv.org/html/1602.02410", "1602.02410"),
    ("https://www.semanticscholar.org/arxiv/2401.12345", "2401.12345"),
    ("https://semanticscholar.org/arxiv/2401.12345", "2401.12345"),
    ("https://scirate.com/arxiv/2401.12345", "2401.12345"),
]

NOT_PAPER_URLS = [
    "https://www.biorxiv.org/content/10.1101/2024.01.12.575432v1",
    "https://www.medrxiv.org/content/10.1101/2023.11.02.23297961v2.full",
    "https://doi.org/10.1101/2024.01.12.575432",
    "https://doi.org/10.1038/s41586-021-03819-2",
    "https://github.com/openai/gpt-2",
    "https://github.com/user/repo/blob/main/arxiv.org/abs/2401.12345",
    "https://github.com/karpathy/arxiv-sanity?paper=2401.12345",
    "https://www.youtube.com/watch?v=2401.12345",
    "https://youtu.be/arxiv.org/abs/2401.12345",
    "https://arxiv.org/list/cs.LG/recent",
    "https://arxiv.org/list/hep-th/9711",
    "https://arxiv.org/a/vaswani_a_1",
    "https://arxiv.org/a/vaswani_a_1.html",
    "https://arxiv.org/",
    "https://arxiv.org/abs/",
    "https://arxiv.org/abs/2413.12345",  # month 13
    "https://arxiv.org/abs/2400.12345",
    "https://arxiv.org/abs/2401.1234",  # 4 digits after 1501
    "https://arxiv.org/abs/2401.123",
    "https://arxiv.org/abs/2401.123456",
    "https://arxiv.org/abs/2401.12345abc",
    "https://arxiv.org/abs/foo/9711200",
    "https://fakearxiv.org/abs/2401.12345",
    "https://arxiv.org.evil.com/abs/2401.12345",
    "https://notalphaxiv.org/abs/2401.12345",
    "https://huggingface.co/2401.12345",
    "https://huggingface.co/datasets/papers/2401.12345",
    "https://www.semanticscholar.org/paper/abc123",
    "https://scirate.com/",
    "https://t.co/YbMgHU5xRX",
    "arxiv.org/abs/2401.1…",
    "arxiv.org/abs/2401.1...",
    "",
    "not a url",
]


@pytest.mark.parametrize(("url", "expected"), URLS)
def test_url_forms(url: str, expected: str) -> None:
    assert arxiv_id_from_url(url) == expected


@pytest.mark.parametrize("url", NOT_PAPER_URLS)
def test_url_traps(url: str) -> None:
    assert arxiv_id_from_url(url) is None


# ---------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------

TEXTS = [
    ("New paper arXiv:2401.12345 is out", ["2401.12345"]),
    ("New paper ARXIV:2401.12345v2.", ["2401.12345"]),
    ("see arXiv: 1602.02410, really", ["1602.02410"]),
    ("(arXiv:hep-th/9711200)", ["hep-th/9711200"]),
    ("classic arXiv:math.GT/0211159", ["math/0211159"]),
    ("read https://arxiv.org/abs/2401.12345v2 now", ["2401.12345"]),
    ("bare arxiv.org/pdf/2401.12345 link", ["2401.12345"]),
    ("doi:10.48550/arXiv.2401.12345", ["2401.12345"]),
    ("https://doi.org/10.48550/arXiv.2401.12345", ["2401.12345"]),
    ("hf: huggingface.co/papers/2401.12345", ["2401.12345"]),
    ("hf.co/papers/2401.12345", ["2401.12345"]),
    (
        "ar5iv.labs.arxiv.org/html/1602.02410 and ar5iv.org/abs/1602.02411",
        ["1602.02410", "1602.02411"],
    ),
    ("alphaxiv.org/overview/2401.12345", ["2401.12345"]),
    (
        "www.semanticscholar.org/arxiv/2401.12345 + scirate.com/arxiv/2401.12346",
        ["2401.12345", "2401.12346"],
    ),
    ("twice: arXiv:2401.12345 and https://arxiv.org/abs/2401.12345v3", ["2401.12345"]),
    ("order: arXiv:2402.00002 then arXiv:2401.00001", ["2402.00002", "2401.00001"]),
    # truncated display strings: an ID only when the cut comes after a complete ID
    ("arxiv.org/abs/2401.1...", []),
    ("arxiv.org/abs/2401.1…", []),
    ("arxiv.org/abs/2401.1234…", []),  # could be 2401.12345..12349
    ("arxiv.org/abs/2401.12345/foo…", []),  # the cut is not right after the ID
    ("arxiv.org/abs/hep-th/971120…", []),
    ("arxiv.org/abs/2401.12345…", ["2401.12345"]),
    ("arxiv.org/abs/2401.12345v…", ["2401.12345"]),
    ("arxiv.org/abs/2401.12345v2…", ["2401.12345"]),
    ("https://arxiv.org/abs/1410.1234...", ["1410.1234"]),  # 4 digits is all 1410 had
    ("arXiv:2401.12345...", ["2401.12345"]),
    ("www.alphaxiv.org/abs/2401.12345…", ["2401.12345"]),
    ("arxiv.org/abs/hep-th/9711200…", ["hep-th/9711200"]),
    # seen in real posts: a link cut by an ellipsis right after a complete ID
    ("Great read arxiv.org/abs/1609.09049… #ml", ["1609.09049"]),
    ("pdf: arxiv.org/pdf/1702.00783… (slides soon)", ["1702.00783"]),
    # the title of arXiv's abstract page pasted as text
    (
        "[2103.11751] Functional Pearl: Witness Me -- Constructive Arguments Must Be Guided",
        ["2103.11751"],
    ),
    ("Reading: [2103.11751v2] Functional Pearl: Witness Me", ["2103.11751"]),
    ("[hep-th/9711200] The Large N Limit of Superconformal Field Theories", ["hep-th/9711200"]),
    ("[math.GT/0211159] The entropy formula", ["math/0211159"]),
    ("[12] Smith et al. showed", []),  # a citation number
    ("[2024.01.12] release notes", []),  # a date
    ("[12.05.2023] meetup", []),
    ("[1602.02410]", []),  # no title follows: a bare bracketed number
    ("[2413.12345] Not a month", []),
    ("[2401.1234] Too short for 2401", []),
    ("[[2103.11751] nested", []),
    ("x[2103.11751] glued", []),
    ("[10.1101/2024.01.12.575432] bioRxiv DOI", []),
    ("[2103.11751](https://example.org) markdown link text", []),
    # traps
    ("price 2401.12345 EUR", []),  # a bare number is not an ID mention
    ("arXiv:2413.12345", []),
    ("arXiv:2401.1234", []),
    ("arXiv:1412.12345", []),
    ("arXiv:2401.123456", []),
    ("myarxiv:2401.12345", []),
    ("fakearxiv.org/abs/2401.12345", []),
    ("https://arxiv.org/list/cs.LG/recent", []),
    ("https://www.biorxiv.org/content/10.1101/2024.01.12.575432v1", []),
    ("github.com/karpathy/nanoGPT youtube.com/watch?v=abc", []),
    ("", []),
    ("no papers here", []),
]


@pytest.mark.parametrize(("text", "expected"), TEXTS)
def test_text_mentions(text: str, expected: list[str]) -> None:
    assert arxiv_ids_in_text(text) == expected


def test_extract_sorted_unique_from_urls_and_texts() -> None:
    ids = extract_arxiv_ids(
        [
            "https://arxiv.org/abs/2401.12345v2",
            "https://huggingface.co/papers/2401.12345",
            "https://github.com/x/y",
            "https://arxiv.org/abs/hep-th/9711200",
        ],
        ["also arXiv:1602.02410 and arxiv.org/abs/2501.1...", "arXiv:2401.12345"],
    )
    assert ids == ["1602.02410", "2401.12345", "hep-th/9711200"]


def test_extract_with_nothing() -> None:
    assert extract_arxiv_ids([], []) == []
    assert extract_arxiv_ids(["https://t.co/abc"], ["hello"]) == []


# ---------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------


def _max_yymm() -> int:
    now = datetime.now(UTC)
    return (now.year % 100) * 100 + now.month


new_style = st.builds(
    lambda yymm, n: f"{yymm:04d}.{n:04d}" if yymm < 1501 else f"{yymm:04d}.{n:05d}",
    st.integers(704, _max_yymm()).filter(lambda v: 1 <= v % 100 <= 12),
    st.integers(1, 9999),
)
old_style = st.builds(
    lambda arch, yymm, n: f"{arch}/{yymm:04d}{n:03d}",
    st.sampled_from(sorted(OLD_ARCHIVES)),
    st.sampled_from(
        [y * 100 + m for y in (*range(91, 100), *range(0, 8)) for m in range(1, 13)]
    ).filter(lambda v: v >= 9108 or v <= 703),
    st.integers(1, 999),
)
valid_ids = st.one_of(new_style, old_style)


def _in_valid_range(ident: str) -> bool:
    """An independent statement of the validity rules, for the property tests."""
    if "/" in ident:
        archive, num = ident.split("/")
        yymm = int(num[:4])
        return (
            archive in OLD_ARCHIVES
            and len(num) == 7
            and num.isdigit()
            and 1 <= yymm % 100 <= 12
            and (yymm >= 9108 or yymm <= 703)
            and num[4:] != "000"
        )
    head, _, tail = ident.partition(".")
    yymm = int(head)
    return (
        len(head) == 4
        and tail.isdigit()
        and 1 <= yymm % 100 <= 12
        and 704 <= yymm <= _max_yymm() + 1
        and len(tail) == (4 if yymm < 1501 else 5)
        and int(tail) > 0
    )


@given(valid_ids)
def test_valid_ids_round_trip(ident: str) -> None:
    assert canonicalize(ident) == ident
    assert canonicalize(canonicalize(ident) or "") == ident


@given(
    valid_ids, st.integers(1, 99), st.sampled_from(["arXiv:", "arxiv:", "ARXIV:", "ArXiv: ", ""])
)
def test_versions_and_prefix_case_do_not_matter(ident: str, version: int, prefix: str) -> None:
    assert canonicalize(f"{prefix}{ident}v{version}") == ident


@given(valid_ids, st.integers(1, 9))
def test_every_url_form_gives_the_same_id(ident: str, version: int) -> None:
    forms = [
        f"https://arxiv.org/abs/{ident}",
        f"https://arxiv.org/abs/{ident}v{version}",
        f"http://export.arxiv.org/pdf/{ident}v{version}.pdf",
        f"https://www.arxiv.org/abs/{ident}?context=x#top",
        f"arxiv.org/pdf/{ident}",
        f"https://ar5iv.labs.arxiv.org/html/{ident}",
    ]
    if "/" not in ident:
        forms += [
            f"https://doi.org/10.48550/arXiv.{ident}",
            f"https://huggingface.co/papers/{ident}",
            f"https://www.alphaxiv.org/abs/{ident}",
            f"https://scirate.com/arxiv/{ident}",
        ]
    assert {arxiv_id_from_url(f) for f in forms} == {ident}
    assert arxiv_ids_in_text(f"look: arXiv:{ident}v{version} wow") == [ident]


@given(st.text(max_size=40))
def test_canonicalize_never_returns_an_invalid_id(raw: str) -> None:
    result = canonicalize(raw)
    assert result is None or _in_valid_range(result)


@given(st.from_regex(r"\A\d{4}\.\d{3,6}(v\d)?\Z"))
def test_digit_strings_are_valid_exactly_in_range(raw: str) -> None:
    result = canonicalize(raw)
    stem = raw.split("v")[0]
    assert result == (stem if _in_valid_range(stem) else None)


@given(
    st.from_regex(r"\A[a-z]{1,8}(-[a-z]{1,5})?(\.[A-Za-z]{2})?/\d{7}\Z"),
)
def test_old_style_only_real_archives(raw: str) -> None:
    result = canonicalize(raw)
    archive = raw.split("/")[0].split(".")[0]
    if archive not in OLD_ARCHIVES:
        assert result is None
    if result is not None:
        assert _in_valid_range(result)


@given(st.text(alphabet="arxiv.org/abs:0123456789v…. hepth-/", max_size=60))
def test_text_scanner_only_returns_valid_ids(text: str) -> None:
    for ident in arxiv_ids_in_text(text):
        assert _in_valid_range(ident)
        assert canonicalize(ident) == ident


@given(valid_ids, st.integers(1, 4))
def test_truncated_display_never_yields_an_id(ident: str, cut: int) -> None:
    full = f"arxiv.org/abs/{ident}"
    shown = full[: len(full) - cut]
    assert arxiv_ids_in_text(shown + "...") == []
    assert arxiv_ids_in_text(shown + "\u2026") == []
    # Cut right after the complete ID: the ID is all there.
    assert arxiv_ids_in_text(full + "\u2026") == [ident]
    assert arxiv_ids_in_text(full + "...") == [ident]


# ---------------------------------------------------------------------------------
# The fast lanes agree with the general code
# ---------------------------------------------------------------------------------

URL_PARTS = (
    st.sampled_from(["https://", "http://", "", " https://", "HTTPS://", "ftp://"]),
    st.sampled_from(["", "www.", "export.", "browse.", "ar5iv.labs.", "dx.", "www.dx.", "x."]),
    st.sampled_from(
        [
            "arxiv.org",
            "ar5iv.org",
            "doi.org",
            "alphaxiv.org",
            "huggingface.co",
            "hf.co",
            "semanticscholar.org",
            "scirate.com",
            "arxiv.org.example.com",
            "biorxiv.org",
        ]
    ),
    st.sampled_from(
        ["/abs/", "/pdf/", "/html/", "/papers/", "/arxiv/", "/overview/", "/10.48550/arXiv.", "/"]
    ),
    st.one_of(
        st.sampled_from(
            [
                "0704.0001",
                "0703.0001",
                "1412.9999",
                "1412.99999",
                "1501.0001",
                "1501.00001",
                "1413.12345",
                "2613.12345",
                "9912.12345",
                "0801.12345",
                "2401.00000",
                "0801.0000",
                "hep-th/9711200",
                "math.GT/0211159",
                "\u0a6e\u0a6e01.12345",
            ]
        ),
        st.from_regex(r"\A[0-9]{4}\.[0-9]{3,6}\Z"),
    ),
    st.sampled_from(["", "v2", "v12", "V3", "v", "v\u0a6e"]),
    st.sampled_from(["", ".pdf", "/", "?x=1", "#y", "\n", " ", "x", "1", ".pdf5", "...", "\u2026"]),
)


@given(st.tuples(*URL_PARTS))
def test_fast_url_lane_answers_as_the_general_code(parts: tuple[str, ...]) -> None:
    url = "".join(parts)
    assert ids.arxiv_id_from_url_cached.__wrapped__(url) == ids._id_from_url_general(url)  # type: ignore[attr-defined]


def _valid_new_reference(ident: str) -> bool:
    """The rule spelled out with integers (as the code did before the set lookups)."""
    yymm = int(ident[:4])
    month = yymm % 100
    if month < 1 or month > 12 or yymm < 704:
        return False
    if len(ident) - 5 != (4 if yymm < 1501 else 5) or int(ident[5:]) == 0:
        return False
    return yymm <= int(ids._new_style_upper_bound())


@given(st.from_regex(r"\A[0-9]{4}\.[0-9]{4,5}\Z"))
def test_new_style_validity_matches_the_integer_rule(ident: str) -> None:
    assert ids._valid_new(ident) == _valid_new_reference(ident)


def test_new_style_validity_at_the_edges() -> None:
    upper = ids._new_style_upper_bound()
    after = f"{int(upper) + 1:04d}" if upper[2:] != "12" else f"{int(upper[:2]) + 1:02d}01"
    for ident, valid in [
        ("0703.9999", False),
        ("0704.0001", True),
        ("1412.9999", True),
        ("1501.0001", False),
        ("1501.00001", True),
        (upper + ".00001", True),
        (after + ".00001", False),
        ("2401.00000", False),
    ]:
        assert ids._valid_new(ident) is valid, ident
        assert _valid_new_reference(ident) is valid, ident


# ---------------------------------------------------------------------------------
# The one-regex-per-needle text scanner answers as the step-by-step rules
# ---------------------------------------------------------------------------------
#
# The reference below spells the text rules out one check at a time (it is the
# scanner as it was before the lookbehind patterns). The only change: a DOI prefix
# is looked for only where there is room for it before the needle.

_REF_TAIL = ids._TEXT_TAIL
_REF_ARXIV = re.compile(r"arxiv(?:\.org/(?:abs|pdf|html)/|:\s?)" + ids._ID + _REF_TAIL)
_REF_ARXIV_DOI = re.compile(r"arxiv\." + ids._ID + _REF_TAIL)
_REF_ARXIV_SEGMENT = re.compile(r"arxiv/" + ids._ID + _REF_TAIL)
_REF_AR5IV = re.compile(r"ar5iv\.org/(?:abs|html)/" + ids._ID + _REF_TAIL)
_REF_ALPHAXIV = re.compile(r"alphaxiv\.org/(?:abs|overview)/" + ids._ID + _REF_TAIL)
_REF_HF = re.compile(r"/papers/" + ids._ID + _REF_TAIL)


def _ref_glued(low: str, pos: int) -> bool:
    if pos <= 0:
        return False
    ch = low[pos - 1]
    return ch.isalnum() or ch == "_" or ch == "-"


def _ref_pattern_at(low: str, needle: str, pos: int) -> re.Match[str] | None:
    if needle == "arxiv":
        if pos >= 9 and low.startswith("10.48550/", pos - 9):
            return None if _ref_glued(low, pos - 9) else _REF_ARXIV_DOI.match(low, pos)
        for host in ("semanticscholar.org/", "scirate.com/"):
            if low.endswith(host, 0, pos):
                glued = _ref_glued(low, pos - len(host))
                return None if glued else _REF_ARXIV_SEGMENT.match(low, pos)
        return None if _ref_glued(low, pos) else _REF_ARXIV.match(low, pos)
    if needle == "/papers/":
        for host in ("huggingface.co", "hf.co"):
            if low.endswith(host, 0, pos):
                return None if _ref_glued(low, pos - len(host)) else _REF_HF.match(low, pos)
        return None
    if _ref_glued(low, pos):
        return None
    return (_REF_AR5IV if needle == "ar5iv" else _REF_ALPHAXIV).match(low, pos)


_REF_BRACKET = re.compile(r"\[" + ids._ID + r"\][ \t\u00a0]+\S")


def _ref_bracket_at(low: str, pos: int) -> re.Match[str] | None:
    before = low[pos - 1] if pos > 0 else " "
    if before.isalnum() or before in "_[":
        return None
    return _REF_BRACKET.match(low, pos)


def _reference_ids_in_text(text: str) -> list[str]:
    low = text.lower()
    found: dict[int, str] = {}
    pos = low.find("[")
    while pos >= 0:
        m = _ref_bracket_at(low, pos)
        ident = ids._from_match(m) if m is not None else None
        if ident is not None:
            found.setdefault(pos, ident)
        pos = low.find("[", pos + 1)
    for needle in ("arxiv", "alphaxiv", "ar5iv", "/papers/"):
        pos = low.find(needle)
        while pos >= 0:
            m = _ref_pattern_at(low, needle, pos)
            ident = ids._from_match(m) if m is not None else None
            if ident is not None:
                found.setdefault(pos, ident)
            pos = low.find(needle, pos + 1)
    return list(dict.fromkeys(found[pos] for pos in sorted(found)))


TEXT_PIECES = st.sampled_from(
    [
        "arxiv",
        "arXiv:",
        "arxiv: ",
        "arxiv.org/abs/",
        "export.arxiv.org/pdf/",
        "fakearxiv.org/abs/",
        "10.48550/",
        "doi.org/10.48550/arXiv.",
        "x10.48550/arxiv.",
        "semanticscholar.org/",
        "www.semanticscholar.org/arxiv/",
        "scirate.com/",
        "-scirate.com/arxiv/",
        "huggingface.co",
        "hf.co",
        "xhf.co",
        "/papers/",
        "ar5iv.org/abs/",
        "ar5iv.labs.arxiv.org/html/",
        "alphaxiv.org/overview/",
        "_alphaxiv.org/abs/",
        "2401.12345",
        "1602.02410",
        "0801.1234",
        "2413.00001",
        "hep-th/9711200",
        "math.gt/0211159",
        "v2",
        "...",
        "\u2026",
        " ",
        "\n",
        "\u00e9",
        "\u0a6e",
        "/",
        ".",
        ":",
        "1",
        "a",
        "[",
        "]",
        "] ",
        "]\t",
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(TEXT_PIECES, max_size=14).map("".join))
def test_text_scanner_answers_as_the_reference_rules(text: str) -> None:
    assert arxiv_ids_in_text(text) == _reference_ids_in_text(text)


@given(st.text(alphabet="arxiv5lph.org/abs:0123456789v… -_10.48550/papersh[]", max_size=80))
def test_text_scanner_answers_as_the_reference_rules_on_noise(text: str) -> None:
    assert arxiv_ids_in_text(text) == _reference_ids_in_text(text)


def test_text_mention_at_the_start_is_found_whatever_the_text_ends_with() -> None:
    # A DOI prefix is looked for before the needle only: text that *ends* in one
    # must not hide a mention at the very start (str.startswith with a negative start
    # would look there).
    assert arxiv_ids_in_text("arXiv:2401.12345 see 10.48550/") == ["2401.12345"]


# ---------------------------------------------------------------------------------
# Links that name no paper site are settled without the general code
# ---------------------------------------------------------------------------------


@given(st.tuples(*URL_PARTS))
def test_every_link_with_an_id_names_a_url_needle(parts: tuple[str, ...]) -> None:
    url = "".join(parts)
    if ids._id_from_url_general(url) is not None:
        assert any(needle in url.lower() for needle in ids._URL_NEEDLES)


@given(st.text(max_size=60), st.sampled_from(["https://", "http://", ""]))
def test_links_without_a_needle_have_no_id(rest: str, scheme: str) -> None:
    url = scheme + rest
    expected = ids._id_from_url_general(url)
    assert ids.arxiv_id_from_url_cached.__wrapped__(url) == expected  # type: ignore[attr-defined]
    if not any(needle in url.lower() for needle in ids._URL_NEEDLES):
        assert expected is None


def test_url_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_URL_CACHE_SIZE", 10)
    ids.arxiv_id_from_url_cached.cache_clear()
    for n in range(1, 36):
        url = f"https://arxiv.org/abs/2401.{n:05d}"
        assert ids.arxiv_id_from_url_cached(url) == f"2401.{n:05d}"
        assert ids.arxiv_id_from_url_cached.cache_info().currsize <= 11
    assert arxiv_id_from_url("https://arxiv.org/abs/2401.00007") == "2401.00007"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # Off the fast lane (padding, no scheme, non-ASCII digits): each needle alone
        # must still lead to the general code.
        ("  https://ar5iv.org/abs/1602.02410", "1602.02410"),
        ("\thttps://alphaxiv.org/overview/2401.12345", "2401.12345"),
        (" https://hf.co/papers/2401.12345", "2401.12345"),
        ("huggingface.co/papers/2401.12345", "2401.12345"),
        ("ftp://arxiv.org/abs/2401.12345", "2401.12345"),
        ("https://arxiv.org/abs/\u0a68\u0a6a01.12345", "\u0a68\u0a6a01.12345"),
        ("https://github.com/arxiv/2401.12345", None),
    ],
)
def test_links_off_the_fast_lane(url: str, expected: str | None) -> None:
    assert ids.arxiv_id_from_url_cached.__wrapped__(url) == expected  # type: ignore[attr-defined]
    assert ids._id_from_url_general(url) == expected
