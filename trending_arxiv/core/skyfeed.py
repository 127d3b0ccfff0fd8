"""A Bluesky custom feed of trending papers: the pure parts of an AT Protocol feed generator.

The generator runs as `did:web:<host>` (its DID document is served at
`/.well-known/did.json`); each feed is an `app.bsky.feed.generator` record that a
Bluesky account (the publisher) puts in its repository, so a feed's URI is
`at://<publisher DID>/app.bsky.feed.generator/<name>`. A skeleton lists, for each trending
paper, the one Bluesky post that best represents it (`best_post`), in ranking order.

Its cursor pins the moment the ranking was taken and the position reached in it
(`SkeletonCursor`): every page of one scroll ranks as of the same moment, so the pages
neither repeat nor skip a paper while new posts arrive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

GENERATOR_COLLECTION = "app.bsky.feed.generator"
POST_COLLECTION = "app.bsky.feed.post"
SERVICE_ID = "#bsky_fg"
SERVICE_TYPE = "BskyFeedGenerator"
#: Deepest position a cursor may point at (Elasticsearch's default result window).
MAX_POSITION = 10_000
# A DID (method-specific id as the spec allows); a record key; a hostname (did:web).
_DID = re.compile(r"^did:[a-z]+:[A-Za-z0-9._:%-]{1,2048}(?<!:)\Z")
_RKEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}\Z")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\Z")
_CURSOR = re.compile(r"^([0-9]{1,15})::([0-9]{1,5})\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_did(value: str) -> bool:
    return bool(_DID.match(value))


def service_did(hostname: str, port: int | None = None) -> str:
    """`did:web:<hostname>` (a port is percent-encoded, as did:web says)."""
    if not _HOSTNAME.match(hostname):
        raise ValueError(f"not a hostname: {hostname!r} (e.g. feeds.example.org)")
    return f"did:web:{hostname}" + (f"%3A{port}" if port else "")


def did_document(did: str, service_endpoint: str) -> dict[str, Any]:
    """The DID document of a did:web feed generator (what `/.well-known/did.json` serves)."""
    return {
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "service": [{"id": SERVICE_ID, "type": SERVICE_TYPE, "serviceEndpoint": service_endpoint}],
    }


def feed_uri(publisher_did: str, name: str) -> str:
    return f"at://{publisher_did}/{GENERATOR_COLLECTION}/{name}"


@dataclass(frozen=True)
class AtUri:
    """`at://<authority>/<collection>/<rkey>` of one record."""

    authority: str
    collection: str
    rkey: str

    def __str__(self) -> str:
        return f"at://{self.authority}/{self.collection}/{self.rkey}"


def parse_record_uri(uri: str) -> AtUri:
    """The parts of a record's at:// URI; ValueError when it is not one."""
    if not isinstance(uri, str) or not uri.startswith("at://") or len(uri) > 8192:
        raise ValueError(f"not an at:// record URI: {uri!r}")
    parts = uri[len("at://") :].split("/")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not an at:// record URI (at://did/collection/rkey): {uri!r}")
    authority, collection, rkey = parts
    if not is_did(authority) or not _RKEY.match(rkey) or "." not in collection:
        raise ValueError(f"not an at:// record URI: {uri!r}")
    return AtUri(authority, collection, rkey)


def post_uri(post_id: str | None, author_id: str | None = None) -> str | None:
    """The at:// URI of a Bluesky post from a mention's post id, or None if it is no post.

    Mentions store the record's at:// URI as their post id; a bare record key is joined
    with the author's DID.
    """
    if not post_id:
        return None
    if post_id.startswith("at://"):
        try:
            parsed = parse_record_uri(post_id)
        except ValueError:
            return None
        return post_id if parsed.collection == POST_COLLECTION else None
    if author_id and is_did(author_id) and _RKEY.match(post_id):
        return f"at://{author_id}/{POST_COLLECTION}/{post_id}"
    return None


def best_post(reposts: Mapping[str, int], originals: Sequence[tuple[datetime, str]]) -> str | None:
    """The post that best represents a paper: the most reposted, else the earliest.

    `reposts` counts reposts per post URI; `originals` are (time, URI) of the posts
    themselves. Equally reposted posts go by the earliest: their known time, else their
    record key (a TID, which sorts by creation time), then the URI.
    """
    counted = {uri: n for uri, n in reposts.items() if n > 0 and post_uri(uri)}
    if counted:
        times = {uri: moment for moment, uri in originals}
        far = datetime.max.replace(tzinfo=UTC)

        def key(uri: str) -> tuple[int, datetime, str, str]:
            return (-counted[uri], times.get(uri, far), uri.rsplit("/", 1)[-1], uri)

        return min(counted, key=key)
    candidates = [(moment, uri) for moment, uri in originals if post_uri(uri)]
    return min(candidates)[1] if candidates else None


# -- cursor --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SkeletonCursor:
    """Where a scroll stands: the ranking's moment and the next ranking position."""

    as_of: datetime
    position: int

    def encode(self) -> str:
        millis = (self.as_of - _EPOCH) // timedelta(milliseconds=1)  # exact, unlike floats
        return f"{millis}::{self.position}"

    @classmethod
    def decode(cls, text: str) -> SkeletonCursor:
        """A cursor this generator wrote; ValueError for anything else."""
        match = _CURSOR.match(text or "")
        if not match:
            raise ValueError("cursor is not one this feed generator wrote")
        millis, position = int(match.group(1)), int(match.group(2))
        if position > MAX_POSITION:
            raise ValueError(f"cursor position beyond {MAX_POSITION}")
        try:
            moment = _EPOCH + timedelta(milliseconds=millis)
        except OverflowError as error:
            raise ValueError("cursor time is out of range") from error
        return cls(moment, position)


def skeleton_page(
    ranked: Iterable[tuple[str, str | None]], limit: int
) -> tuple[list[str], int, bool]:
    """Posts of one page from `(paper, post URI or None)` pairs in ranking order.

    Returns the post URIs (at most `limit`, papers without a post skipped), how many
    pairs were used, and whether the page is full (so a next one may follow).
    """
    posts: list[str] = []
    used = 0
    for _, uri in ranked:
        used += 1
        if uri:
            posts.append(uri)
            if len(posts) == limit:
                return posts, used, True
    return posts, used, False


# -- records and responses -----------------------------------------------------------------
def generator_record(
    did: str, display_name: str, description: str, created_at: datetime
) -> dict[str, Any]:
    """An `app.bsky.feed.generator` record (the lexicon's camelCase JSON)."""
    record: dict[str, Any] = {
        "$type": GENERATOR_COLLECTION,
        "did": did,
        "displayName": display_name,
        "createdAt": created_at.astimezone(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
    }
    if description:
        record["description"] = description
    return record


def put_record_body(publisher_did: str, name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The input of `com.atproto.repo.putRecord` that publishes a feed's record."""
    return {
        "repo": publisher_did,
        "collection": GENERATOR_COLLECTION,
        "rkey": name,
        "record": dict(record),
    }


def describe_response(did: str, uris: Iterable[str]) -> dict[str, Any]:
    """The output of `app.bsky.feed.describeFeedGenerator`."""
    return {"did": did, "feeds": [{"uri": uri} for uri in uris]}


def skeleton_response(posts: Iterable[str], cursor: SkeletonCursor | None) -> dict[str, Any]:
    """The output of `app.bsky.feed.getFeedSkeleton`."""
    body: dict[str, Any] = {"feed": [{"post": uri} for uri in posts]}
    if cursor is not None:
        body["cursor"] = cursor.encode()
    return body


def xrpc_error(name: str, message: str) -> dict[str, str]:
    """An XRPC error body (`{"error": "UnknownFeed", "message": ...}`)."""
    return {"error": name, "message": message}
