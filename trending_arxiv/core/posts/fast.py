"""The shared fast path: typed decoding of the two shapes that make up almost all traffic.

An X v2 stream message or response page, and a Jetstream post/repost commit, are
decoded with msgspec into Structs (x.py, bluesky.py) that name only the fields the
general parsers read: the decoder
skips everything else (metrics, user bios, blob refs) without building objects, and
rejects any field of an unexpected type. Whatever it does not accept, and any shape
it cannot decide exactly as the general code would, returns None and goes the
general (orjson + dict) way, which also writes every error message. The results are
identical by construction and by test (tests/unit/test_posts.py).
"""

from __future__ import annotations

import sys

import msgspec

from trending_arxiv.core.posts.bluesky import _fast_jetstream, _JCommit
from trending_arxiv.core.posts.common import NormalizedPost
from trending_arxiv.core.posts.x import _fast_x2, _XIncludes, _XTweet


class _Envelope(msgspec.Struct, gc=False):
    """The top level of both shapes; UNSET tells an absent ``data`` from a null one."""

    data: _XTweet | list[_XTweet] | msgspec.UnsetType | None = msgspec.UNSET
    includes: _XIncludes | None = None
    did: str | None = None
    kind: str | None = None
    time_us: int | None = None
    commit: _JCommit | None = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_UNSET = msgspec.UNSET
_int_max_str_digits = sys.get_int_max_str_digits


def _fast_parse(line: str | bytes) -> list[NormalizedPost] | None:
    """The posts of an X v2 or Jetstream line, or None: then the general path decides."""
    kind = type(line)
    if kind is bytes:
        # msgspec does not check the UTF-8 of the strings it skips; the general path
        # rejects invalid UTF-8 anywhere, so check it here (ASCII needs no check).
        if not line.isascii():
            try:
                line.decode()  # type: ignore[union-attr]
            except UnicodeDecodeError:
                return None
    elif kind is not str:
        return None
    limit = _int_max_str_digits()
    if limit and len(line) > limit and _has_long_digit_run(line, limit):
        return None  # an integer past Python's digit limit is an error on the general path
    try:
        env = _ENVELOPE.decode(line)
        data = env.data
        if data is not _UNSET:
            if data is None:
                return None
            return _fast_x2(env)
        if env.did is not None and env.kind is not None:
            return _fast_jetstream(env)
    except (msgspec.DecodeError, RecursionError, ValueError, TypeError, OverflowError):
        return None  # ValidationError is a DecodeError: a type the general path judges
    return None


def _has_long_digit_run(line: str | bytes, limit: int) -> bool:
    """Does ``line`` hold a run of more than ``limit`` ASCII digits (in a number or not)?

    Such a run covers a multiple of ``limit``, so only the runs through those
    positions are measured: a few lookups per line instead of a scan.
    """
    digits = _DIGIT_BYTES if isinstance(line, bytes) else _DIGIT_CHARS
    n = len(line)
    for i in range(limit, n, limit):
        if line[i] in digits:
            start, end = i, i + 1
            while start > 0 and line[start - 1] in digits:
                start -= 1
            while end < n and line[end] in digits:
                end += 1
            if end - start > limit:
                return True
    return False


_DIGIT_BYTES = frozenset(b"0123456789")
_DIGIT_CHARS = frozenset("0123456789")
