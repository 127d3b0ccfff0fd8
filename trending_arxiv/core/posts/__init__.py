"""Normalise raw social posts (X v2/v1.1, Bluesky Jetstream, Mastodon) into one shape.

`parse_payload` takes any decoded payload and returns the posts in it;
`parse_line` decodes one JSON line first. Anything that is not a recognisable
payload raises `PostParseError` with a human reason, never another exception type.
Pure code: no I/O, no Kafka/Faust/Elasticsearch.
"""

from __future__ import annotations

from typing import Any

from trending_arxiv.core.posts.bluesky import _parse_jetstream
from trending_arxiv.core.posts.common import NormalizedPost, PostParseError, _describe
from trending_arxiv.core.posts.common import _post as _post  # tests build posts with it
from trending_arxiv.core.posts.decode import _decode as _decode
from trending_arxiv.core.posts.decode import _decode_slow, _fast_loads, _FastDecodeError
from trending_arxiv.core.posts.fast import _fast_parse as _fast_parse
from trending_arxiv.core.posts.mastodon import _is_mastodon, _parse_mastodon, _parse_mastodon_event
from trending_arxiv.core.posts.x import _is_v1_status, _parse_v1, _parse_x2
from trending_arxiv.core.vocabulary import KINDS, SOURCES

__all__ = [
    "KINDS",
    "SOURCES",
    "NormalizedPost",
    "PostParseError",
    "parse_line",
    "parse_payload",
]


_X_PROBLEM = "https://api.twitter.com/2/problems/"


def _parse_object(obj: dict[str, Any]) -> list[NormalizedPost]:
    if "data" in obj:
        if obj["data"] is None and "errors" in obj:
            return []
        return _parse_x2(obj)
    if "did" in obj and "kind" in obj:
        return _parse_jetstream(obj)
    if _is_mastodon(obj):
        return [_parse_mastodon(obj)]
    if _is_v1_status(obj):
        return [_parse_v1(obj)]
    if isinstance(obj.get("statuses"), list):  # v1.1 search page
        return _parse_array(obj["statuses"])
    if "errors" in obj:
        return []  # an X error body (v2 or v1.1) with no posts in it
    if str(obj.get("type", "")).startswith(_X_PROBLEM):
        return []  # X v2 problem document (rate limit, too many connections)
    if "event" in obj and "payload" in obj:
        return _parse_mastodon_event(obj)
    keys = ", ".join(sorted(map(str, obj))[:8]) or "none"
    raise PostParseError(f"unrecognised payload: an object with keys {keys}")


def _parse_array(items: list[Any]) -> list[NormalizedPost]:
    out: list[NormalizedPost] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PostParseError(f"array item {i} must be a post object, got {_describe(item)}")
        if _is_v1_status(item):
            out.append(_parse_v1(item))
        elif _is_mastodon(item):
            out.append(_parse_mastodon(item))
        else:
            raise PostParseError(f"array item {i} is not an X v1.1 or Mastodon status")
    return out


def parse_payload(obj: object) -> list[NormalizedPost]:
    """The posts in one decoded payload; ``[]`` for events that are not posts."""
    try:
        if isinstance(obj, dict):
            return _parse_object(obj)
        if isinstance(obj, list):
            return _parse_array(obj)
    except PostParseError:
        raise
    except (TypeError, KeyError, AttributeError, ValueError, IndexError) as exc:
        raise PostParseError(f"malformed payload: {type(exc).__name__}: {exc}") from exc
    raise PostParseError(f"unrecognised payload: expected a JSON object, got {_describe(obj)}")


def parse_line(line: str | bytes) -> list[NormalizedPost]:
    """Decode one JSON document (a JSONL line) and return the posts in it."""
    posts = _fast_parse(line)
    if posts is not None:
        return posts
    try:
        obj = _fast_loads(line)
    except _FastDecodeError:
        obj = _decode_slow(line)
    except TypeError:
        raise PostParseError(f"expected a str or bytes line, got {type(line).__name__}") from None
    return parse_payload(obj)
