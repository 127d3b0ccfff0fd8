"""Canonical arXiv identifiers: validate, canonicalise, and find them in URLs and text.

Canonical forms:

* new style ``YYMM.NNNN`` (0704-1412) and ``YYMM.NNNNN`` (1501 on), month 01-12,
  never later than next month;
* old style ``archive/YYMMNNN`` (9108-0703) for the real list of pre-2007 archives;
  a subject class (``math.GT/0211159``) folds into its archive (``math/0211159``).

Versions (``v2``) are dropped and every form is lower case. Pure code, no I/O.
All regexes are compiled once at import; callers lower-case nothing themselves.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime

__all__ = [
    "OLD_ARCHIVES",
    "add_arxiv_ids_in_text",
    "arxiv_id_from_url",
    "arxiv_id_from_url_cached",
    "arxiv_ids_in_text",
    "canonicalize",
    "extract_arxiv_ids",
]

#: Archives that had pre-April-2007 identifiers (arXiv's own list; q-fin, stat, econ,
#: eess and the new cs/math subject classes only ever had new-style IDs).
OLD_ARCHIVES: frozenset[str] = frozenset(
    {
        "acc-phys",
        "adap-org",
        "alg-geom",
        "ao-sci",
        "astro-ph",
        "atom-ph",
        "bayes-an",
        "chao-dyn",
        "chem-ph",
        "cmp-lg",
        "comp-gas",
        "cond-mat",
        "cs",
        "dg-ga",
        "funct-an",
        "gr-qc",
        "hep-ex",
        "hep-lat",
        "hep-ph",
        "hep-th",
        "math",
        "math-ph",
        "mtrl-th",
        "nlin",
        "nucl-ex",
        "nucl-th",
        "patt-sol",
        "physics",
        "plasm-ph",
        "q-alg",
        "q-bio",
        "quant-ph",
        "solv-int",
        "supr-con",
    }
)

# One identifier, on lower-cased input. Groups: new (YYMM.N+), arch + old (YYMMNNN).
# The subject class (".gt", ".str-el") is matched but not captured: it folds away.
_ID = (
    r"(?:(?P<new>\d{4}\.\d{4,5})"
    r"|(?P<arch>[a-z]+(?:-[a-z]+)?)(?:\.[a-z]+(?:-[a-z]+)?)?/(?P<old>\d{7}))"
    r"(?:v\d+)?"
)

# After the ID in a URL: only ".pdf", a path/query/fragment separator, or the end.
_URL_TAIL = r"(?:\.pdf)?(?:[/?#]|$)"

# URL path (after "host/") per site. Matching the host exactly and the path from its
# start means an arXiv URL quoted inside a GitHub/YouTube/redirect URL never counts.
_ARXIV_PATH = re.compile(r"(?:abs|pdf|html)/" + _ID + _URL_TAIL)
_AR5IV_PATH = re.compile(r"(?:abs|html)/" + _ID + _URL_TAIL)
_DOI_PATH = re.compile(r"10\.48550/arxiv\." + _ID + _URL_TAIL)
_ALPHAXIV_PATH = re.compile(r"(?:abs|overview)/" + _ID + _URL_TAIL)
_HF_PATH = re.compile(r"papers/" + _ID + _URL_TAIL)
_ARXIV_SEGMENT_PATH = re.compile(r"arxiv/" + _ID + _URL_TAIL)


# Fast lane for links in the common forms: scheme, a known host, its path and either a
# valid new-style ID (ASCII digits, month 01-12, 4 digits to 1412, 5 from 1501, not all
# zeros; group 1) or an old-style one (groups 2 and 3, validated as the general code
# does), in one regex call. Every alternative is one host of _HOSTS (or of *.arxiv.org)
# with that host's own path, so a match here is a match of the general code; anything
# else (other schemes, padding, non-ASCII digits, invalid IDs) takes the general code.
_NEW_ID_ASCII = (
    r"((?:07(?:0[4-9]|1[0-2])|(?:0[89]|1[0-4])(?:0[1-9]|1[0-2]))\.(?!0000)[0-9]{4}"
    r"|(?:1[5-9]|[2-9][0-9])(?:0[1-9]|1[0-2])\.(?!00000)[0-9]{5})"
)
_OLD_ID_ASCII = r"([a-z]+(?:-[a-z]+)?)(?:\.[a-z]+(?:-[a-z]+)?)?/([0-9]{7})"
_FAST_URL = re.compile(
    r"https?://(?:"
    r"(?:www\.|export\.|browse\.|ar5iv\.labs\.)?arxiv\.org/(?:abs|pdf|html)/"
    r"|(?:www\.)?ar5iv\.org/(?:abs|html)/"
    r"|(?:www\.)?(?:dx\.)?doi\.org/10\.48550/arxiv\."
    r"|(?:www\.)?alphaxiv\.org/(?:abs|overview)/"
    r"|(?:www\.)?(?:huggingface|hf)\.co/papers/"
    r"|(?:www\.)?(?:semanticscholar\.org|scirate\.com)/arxiv/"
    r")(?:" + _NEW_ID_ASCII + "|" + _OLD_ID_ASCII + r")(?:v[0-9]+)?" + _URL_TAIL
)


#: Every link the general code accepts names one of these (lower-cased): the arXiv
#: hosts and paths, ar5iv.org, alphaxiv.org, the DOI path ``10.48550/arxiv.``, the
#: ``arxiv/`` path of Semantic Scholar and SciRate, Hugging Face's ``papers/`` path.
#: A link without any of them has no ID (tests/unit/test_ids.py checks this).
_URL_NEEDLES = ("arxiv", "ar5iv", "alphaxiv", "papers/")


def _with_www(hosts: dict[str, re.Pattern[str]]) -> dict[str, re.Pattern[str]]:
    return hosts | {"www." + h: pat for h, pat in hosts.items()}


_HOSTS: dict[str, re.Pattern[str]] = _with_www(
    {
        "arxiv.org": _ARXIV_PATH,
        "ar5iv.org": _AR5IV_PATH,
        "doi.org": _DOI_PATH,
        "dx.doi.org": _DOI_PATH,
        "alphaxiv.org": _ALPHAXIV_PATH,
        "huggingface.co": _HF_PATH,
        "hf.co": _HF_PATH,
        "semanticscholar.org": _ARXIV_SEGMENT_PATH,
        "scirate.com": _ARXIV_SEGMENT_PATH,
    }
)

# In free text the ID must not run on into more digits, and the rest of the token
# must not end in an ellipsis: that is a truncated display string, never read --
# unless the ellipsis comes right after the ID (or its version): the ID regex and the
# validity rules already make it complete (a new-style ID has exactly 4 digits up to
# 1412 and 5 from 1501, an old-style one 7), so "arxiv.org/abs/1609.09049…" names
# 1609.09049 while "arxiv.org/abs/2401.1234…" (which could be 2401.12345) names nothing.
_ELLIPSIS = r"(?:\u2026|\.\.\.)"
_TEXT_TAIL = r"(?!\d)(?:(?=(?:v\d*)?" + _ELLIPSIS + r")|(?!\S*?" + _ELLIPSIS + r"))"
# A site name or DOI must not be glued to a longer word ("fakearxiv.org", "x10.48550"):
# the character before it is no letter, digit, "_" or "-" (\w is str.isalnum() or "_").
_FREE = r"(?<![\w-])"
# One pattern per needle, matched where the needle occurs. Lookbehinds see the text
# before that position, so each pattern decides its whole mention in one regex call.
# At "arxiv": "10.48550/arxiv.ID" (the arXiv DOI, with or without doi.org),
# "semanticscholar.org/arxiv/ID" and "scirate.com/arxiv/ID"; anywhere else
# "arxiv.org/abs/ID" (any subdomain) or "arxiv:ID". Exactly one branch applies.
_TEXT_AT_ARXIV = re.compile(
    r"(?:(?<=" + _FREE + r"10\.48550/)arxiv\."
    r"|(?<=" + _FREE + r"semanticscholar\.org/)arxiv/"
    r"|(?<=" + _FREE + r"scirate\.com/)arxiv/"
    r"|(?<!10\.48550/)(?<!semanticscholar\.org/)(?<!scirate\.com/)"
    + _FREE
    + r"arxiv(?:\.org/(?:abs|pdf|html)/|:\s?))"
    + _ID
    + _TEXT_TAIL
)
_TEXT_AT_AR5IV = re.compile(_FREE + r"ar5iv\.org/(?:abs|html)/" + _ID + _TEXT_TAIL)
_TEXT_AT_ALPHAXIV = re.compile(_FREE + r"alphaxiv\.org/(?:abs|overview)/" + _ID + _TEXT_TAIL)
# At "/papers/", after huggingface.co or hf.co.
_TEXT_AT_PAPERS = re.compile(
    r"(?:(?<=" + _FREE + r"huggingface\.co)|(?<=" + _FREE + r"hf\.co))/papers/" + _ID + _TEXT_TAIL
)

# The title of arXiv's own abstract page, pasted as text: "[2103.11751] Functional
# Pearl: ...". The ID must fill the brackets (never "[12]", "[2024.01.12]", "[a 2103.11751]")
# and a title must follow on the same line, so a lone bracketed number is not read.
_TEXT_AT_BRACKET = re.compile(r"(?<![\w\[])\[" + _ID + r"\](?=[ \t\u00a0]+\S)")


_OLD_MIN, _OLD_MAX = 9108, 703  # yymm bounds of old-style IDs, 1991-08 .. 2007-03


def _next_month_yymm() -> str:
    """YYMM of the month after the current UTC month (slack for time zones)."""
    now = datetime.now(UTC)
    year, month = (now.year, now.month + 1) if now.month < 12 else (now.year + 1, 1)
    return f"{year % 100:02d}{month:02d}"


# Upper bound for new-style YYMM; refreshed lazily when a candidate exceeds it, so a
# long-running stream process keeps accepting new months without a per-call clock read.
# Four-digit strings compare like the numbers they spell.
_new_max = _next_month_yymm()
_new_max_checked = time.monotonic()


_new_bound = _new_max + "/"


def _new_style_upper_bound() -> str:
    global _new_max, _new_bound, _new_max_checked
    now = time.monotonic()
    if now - _new_max_checked > 3600.0:
        _new_max = _next_month_yymm()
        _new_bound = _new_max + "/"
        _new_max_checked = now
    return _new_max


# Valid YYMM prefixes: 4-digit numbers 0704-1412, 5-digit numbers from 1501 on (a set
# lookup instead of int() arithmetic per candidate; the upper bound is checked apart).
_MONTHS = range(1, 13)
_YYMM_4 = frozenset(f"{y:02d}{m:02d}" for y in range(7, 15) for m in _MONTHS if y * 100 + m >= 704)
_YYMM_5 = frozenset(f"{y:02d}{m:02d}" for y in range(15, 100) for m in _MONTHS)


def _valid_new(ident: str) -> bool:
    """``ident`` is ``DDDD.DDDD`` or ``DDDD.DDDDD`` (regex-guaranteed)."""
    if not ident.isascii():
        return _valid_new_unicode(ident)
    yymm = ident[:4]
    if len(ident) == 9:
        if yymm not in _YYMM_4 or ident.endswith("0000"):
            return False
    elif yymm not in _YYMM_5 or ident.endswith("00000"):
        return False
    return yymm <= _new_max or yymm <= _new_style_upper_bound()


def _valid_new_unicode(ident: str) -> bool:
    """`_valid_new` for IDs written with non-ASCII digits (``\\d`` and int() accept them)."""
    yymm = int(ident[:4])
    if f"{yymm:04d}" not in (_YYMM_4 if len(ident) == 9 else _YYMM_5) or int(ident[5:]) == 0:
        return False
    return yymm <= int(_new_max) or yymm <= int(_new_style_upper_bound())


def _valid_old(archive: str, number: str) -> bool:
    """``number`` is ``YYMMNNN`` (regex-guaranteed)."""
    if archive not in OLD_ARCHIVES:
        return False
    yymm = int(number[:4])
    month = yymm % 100
    if month < 1 or month > 12:
        return False
    if not (yymm >= _OLD_MIN or yymm <= _OLD_MAX):
        return False
    return number[4:] != "000"


def _from_match(m: re.Match[str]) -> str | None:
    new = m.group(1)  # every pattern's only capturing groups are _ID's: new, arch, old
    if new is not None:
        return new if _valid_new(new) else None
    arch, old = m.group(2, 3)
    if _valid_old(arch, old):
        return f"{arch}/{old}"
    return None


_CANON_RE = re.compile(r"\s*(?:arxiv:\s?)?" + _ID + r"\s*")


def canonicalize(raw: str) -> str | None:
    """Canonical form of an arXiv ID written any accepted way, or None if it is not one.

    ``arXiv:1602.02410v2`` -> ``1602.02410``; ``math.GT/0211159`` -> ``math/0211159``.
    """
    if not isinstance(raw, str):
        return None
    m = _CANON_RE.fullmatch(raw.lower())
    return _from_match(m) if m else None


def arxiv_id_from_url(url: str) -> str | None:
    """The paper a URL points at (arXiv and its mirrors/aggregators), or None."""
    if not isinstance(url, str):
        return None
    return arxiv_id_from_url_cached(url)


_URL_CACHE_SIZE = 4096
_url_cache_misses = 0


# Trending papers are linked over and over with the same URL: remember the answers.
# functools.cache is a bare dict lookup; a bounded lru_cache also keeps a recency list,
# which cost more on every miss than it saved. Instead the cache is emptied every
# _URL_CACHE_SIZE misses, so a long-running stream stays bounded. A few thousand
# links cover what is trending; a larger cache measured slower (bench_extract.py).
@functools.cache
def arxiv_id_from_url_cached(url: str) -> str | None:
    """`arxiv_id_from_url` for a ``str`` (unchecked), answers cached: the parsers' hot path."""
    global _url_cache_misses
    _url_cache_misses += 1
    if _url_cache_misses > _URL_CACHE_SIZE:
        _url_cache_misses = 0
        arxiv_id_from_url_cached.cache_clear()  # the answer computed below is stored afresh
    low = url.lower()
    fast = _FAST_URL.match(low)
    if fast is not None:
        ident = fast.group(1)
        if ident is not None:
            # "YYMM." sorts before "YYMM/": below the bound means YYMM <= next month.
            return ident if ident < _new_bound or _valid_new(ident) else None
        arch, old = fast.group(2, 3)
        return f"{arch}/{old}" if _valid_old(arch, old) else None
    # Most other links (t.co, GitHub, news sites) name no paper site at all: a few
    # substring tests settle them without the general code. See _URL_NEEDLES.
    if "arxiv" not in low and "ar5iv" not in low and "alphaxiv" not in low and "papers/" not in low:
        return None
    return _id_from_url_general(url)


def _id_from_url_general(url: str) -> str | None:
    """Any accepted link form: find the host, then match that host's path pattern."""
    low = url.strip().lower()
    start = low.find("://") + 3
    if start == 2:  # no scheme
        start = 0
    slash = low.find("/", start)
    if slash <= start:
        return None
    host = low[start:slash]
    pattern = _HOSTS.get(host)
    if pattern is None:
        if not host.endswith(".arxiv.org"):  # export., browse., ar5iv.labs., mirrors
            return None
        pattern = _ARXIV_PATH
    m = pattern.match(low, slash + 1)
    if m is None:
        return None
    new = m.group(1)  # inlined _from_match: this runs once per distinct link
    if new is not None:
        return new if _valid_new(new) else None
    return _from_match(m)


def _scan(low: str, needle: str, pattern: re.Pattern[str], found: dict[int, str]) -> None:
    """Match ``pattern`` at every occurrence of ``needle``; valid IDs go to ``found``."""
    pos = low.find(needle)
    while pos >= 0:
        m = pattern.match(low, pos)
        if m is not None:
            ident = _from_match(m)
            if ident is not None:
                found.setdefault(pos, ident)
        pos = low.find(needle, pos + 1)


def arxiv_ids_in_text(text: str) -> list[str]:
    """IDs from ``arXiv:ID`` mentions, complete paper URLs and arXiv page titles
    (``[ID] Title``) in free text, in order, without duplicates. Truncated display
    strings (an ellipsis before the ID is complete) give nothing.
    """
    if not text or not isinstance(text, str):
        return []
    found = _scan_text(text.lower())
    if len(found) < 2:
        return list(found.values())
    return list(dict.fromkeys(found[pos] for pos in sorted(found)))


def _scan_text(low: str) -> dict[int, str]:
    """Position -> ID of every mention in lower-cased text."""
    # str.find runs at C speed; the anchored regexes only run where a needle occurs.
    found: dict[int, str] = {}
    if "xiv" in low:
        _scan(low, "arxiv", _TEXT_AT_ARXIV, found)
        if "alphaxiv" in low:
            _scan(low, "alphaxiv", _TEXT_AT_ALPHAXIV, found)
    if "ar5iv" in low:
        _scan(low, "ar5iv", _TEXT_AT_AR5IV, found)
    if "/papers/" in low:
        _scan(low, "/papers/", _TEXT_AT_PAPERS, found)
    if "[" in low:
        _scan(low, "[", _TEXT_AT_BRACKET, found)
    return found


def add_arxiv_ids_in_text(text: str, ids: set[str]) -> None:
    """Add what `arxiv_ids_in_text` finds in ``text`` (a str) to ``ids``, unordered."""
    low = text.lower()
    # Most post texts name no paper site: the needle tests of `_scan_text`, inlined.
    if "xiv" in low or "ar5iv" in low or "/papers/" in low or "[" in low:
        found = _scan_text(low)
        if found:
            ids.update(found.values())


def extract_arxiv_ids(urls: Iterable[str], texts: Iterable[str]) -> list[str]:
    """Sorted unique canonical IDs from link URLs and post texts."""
    ids: set[str] = set()
    for url in urls:
        ident = arxiv_id_from_url(url)
        if ident is not None:
            ids.add(ident)
    for text in texts:
        ids.update(arxiv_ids_in_text(text))
    return sorted(ids)


_MERGED_SCHEME_SLASHES = re.compile(r"^(https?):/(?!/)", re.IGNORECASE)


def paper_id(text: str) -> str | None:
    """The paper a user means by `text`: an ID in any accepted form or a paper URL.

    Every entry point (CLI arguments, API paths) reads a paper with this. In a URL path
    `https://` often arrives as `https:/` (clients and proxies merge double slashes).
    """
    if not isinstance(text, str):
        return None
    cleaned = _MERGED_SCHEME_SLASHES.sub(r"\1://", text.strip())
    return canonicalize(cleaned) or arxiv_id_from_url(cleaned)
