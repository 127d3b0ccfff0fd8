"""Decoding one JSON line: orjson, or the stdlib for what orjson refuses (and to explain)."""

from __future__ import annotations

import json
import re
from typing import Any

from trending_arxiv.core.posts.common import PostParseError

try:  # orjson is ~5x faster than the stdlib; the stdlib still explains bad input.
    import orjson

    _fast_loads: Any = orjson.loads
    _FastDecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - exercised only without orjson installed
    _fast_loads = json.loads


def _decode(line: str | bytes) -> object:
    try:
        return _fast_loads(line)
    except _FastDecodeError:
        return _decode_slow(line)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value: object) -> object:
    """`value` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {
            _LONE_SURROGATE.sub("\ufffd", key): _without_lone_surrogates(item)
            for key, item in value.items()
        }
    return value


def _decode_slow(line: str | bytes) -> object:
    if not isinstance(line, str | bytes | bytearray):
        raise PostParseError(f"expected a str or bytes line, got {type(line).__name__}")
    if not line.strip():
        raise PostParseError("empty line")
    # Slow path, only for bad or unusual input: the stdlib either accepts what orjson
    # refuses (lone surrogate escapes, huge integers) or explains the problem.
    if isinstance(line, bytes | bytearray):
        try:
            text = bytes(line).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PostParseError(f"invalid UTF-8 at byte {exc.start}: {exc.reason}") from None
    else:
        text = line
    try:
        obj = json.loads(text)
        # The stdlib keeps lone surrogate escapes ("\ud800"), which no UTF-8 encoder
        # downstream accepts (Faust's changelog crashed on one): replace them with U+FFFD.
        return _without_lone_surrogates(obj) if "\\u" in text else obj
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            reason = f"input ends in the middle of a value (truncated?): {exc.msg}"
        else:
            reason = exc.msg
        raise PostParseError(
            f"invalid JSON: {reason} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise PostParseError("invalid JSON: nested too deeply") from None
    except ValueError as exc:
        # Not a syntax error: e.g. an integer literal longer than Python converts (4300
        # digits). Still input we cannot read, so still a PostParseError.
        raise PostParseError(f"invalid JSON: {str(exc)[:200]}") from None
