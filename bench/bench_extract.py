"""Benchmark: posts/s of parse + arXiv-ID extraction vs. the original system's regex.

Two deterministic corpora of raw lines (X API v2 stream messages and Bluesky Jetstream
commits, about 1.5 KB per post, every supported URL form plus traps), each with its
ground truth:

* ``arxiv``: posts with arXiv links (about 90% cite a paper; IDs almost never repeat,
  so the URL cache is no help);
* ``mixed``: a realistic stream: X filtered-stream posts (most cite papers; retweets
  carry the original in ``includes``), and Bluesky posts of which few cite papers,
  with replies, image and link embeds, non-ASCII text, reposts and deletes; cited
  papers follow a Zipf law, as trending papers do.

Pipelines, interleaved in every repeat so that load on a shared machine hits all alike:

* ours: ``parse_line`` on each raw line (decoding, normalisation, extraction); the URL
  cache is cleared before every run;
* ours, general path: ``orjson.loads`` + ``parse_payload`` (decoded dicts, loaded into
  the typed shapes and parsed by the same parser; ``parse_line`` falls back to it for
  shapes the typed decoding does not take);
* original: stdlib ``json.loads`` + the regex ``arxiv.org/(abs|pdf)/\\d{4}\\.\\d{5}`` over
  the post's link URLs;
* original regex alone over the pre-extracted URLs (no JSON cost at all).

Rates use the thread's CPU time (time the scheduler gave to other processes does not
count) and wall time; the table shows medians over the repeats, and the ratio is of
medians. Recall and false IDs are scored against the ground truth. Results go to
``bench/results/extract.json``.

    python -m bench.bench_extract [--posts N] [--repeat R] [--seed S] [--corpus arxiv,mixed]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import pathlib
import platform
import random
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from trending_arxiv.core.ids import arxiv_id_from_url_cached
from trending_arxiv.core.posts import parse_line, parse_payload

ROOT = pathlib.Path(__file__).resolve().parents[1]

ORIGINAL_RE = re.compile(r"arxiv.org/(abs|pdf)/\d{4}\.\d{5}")
TARGET_BYTES = 1500

# (template, id kinds it can carry). {id} is the ID as written, {v} an optional version.
URL_FORMS: list[tuple[str, tuple[str, ...]]] = [
    ("https://arxiv.org/abs/{id}{v}", ("new5", "new4", "old", "oldsub")),
    ("https://arxiv.org/pdf/{id}{v}", ("new5", "new4", "old")),
    ("https://arxiv.org/pdf/{id}{v}.pdf", ("new5", "new4", "old")),
    ("http://www.arxiv.org/abs/{id}{v}?context=cs", ("new5", "new4")),
    ("https://export.arxiv.org/abs/{id}{v}", ("new5", "new4", "old")),
    ("https://browse.arxiv.org/html/{id}{v}#S3", ("new5",)),
    ("https://arxiv.org/html/{id}{v}", ("new5",)),
    ("https://doi.org/10.48550/arXiv.{id}", ("new5", "new4")),
    ("https://www.alphaxiv.org/abs/{id}{v}", ("new5",)),
    ("https://www.alphaxiv.org/overview/{id}", ("new5",)),
    ("https://huggingface.co/papers/{id}", ("new5",)),
    ("https://ar5iv.org/abs/{id}", ("new5", "new4", "old")),
    ("https://ar5iv.labs.arxiv.org/html/{id}", ("new5", "new4")),
    ("https://www.semanticscholar.org/arxiv/{id}", ("new5", "new4")),
    ("https://scirate.com/arxiv/{id}", ("new5", "new4")),
]

NON_PAPER_URLS = [
    "https://www.biorxiv.org/content/10.1101/2024.01.12.575432v1",
    "https://www.medrxiv.org/content/10.1101/2023.11.02.23297961v2.full",
    "https://github.com/openai/gpt-2/blob/master/README.md",
    "https://www.youtube.com/watch?v=V5lDo-jw8mA",
    "https://arxiv.org/list/cs.LG/recent",
    "https://arxiv.org/a/vaswani_a_1",
    "https://doi.org/10.1038/s41586-021-03819-2",
    "https://example.com/blog/2024/01/notes-on-2401.12345",
]

WORDS = [
    "we",
    "propose",
    "a",
    "new",
    "method",
    "for",
    "training",
    "large",
    "models",
    "with",
    "fewer",
    "labels",
    "and",
    "show",
    "strong",
    "results",
    "on",
    "several",
    "benchmarks",
    "including",
    "ablations",
    "theory",
    "and",
    "code",
    "release",
    "this",
    "paper",
    "studies",
    "scaling",
    "laws",
    "diffusion",
    "transformers",
    "graphs",
    "physics",
    "quantum",
]


@dataclass
class Post:
    line: bytes
    urls: list[str]  # every URL string the post carries (what the old regex saw)
    truth: frozenset[str]


def _new_id(rng: random.Random, kind: str) -> tuple[str, str]:
    """(as written, canonical)."""
    if kind == "new5":
        yy, mm = rng.randint(15, 25), rng.randint(1, 12)
        ident = f"{yy:02d}{mm:02d}.{rng.randint(1, 29999):05d}"
        return ident, ident
    if kind == "new4":
        yymm = rng.choice([y * 100 + m for y in range(7, 15) for m in range(1, 13)][3:])
        ident = f"{yymm:04d}.{rng.randint(1, 9999):04d}"
        return ident, ident
    archive = rng.choice(["hep-th", "hep-ph", "astro-ph", "cond-mat", "quant-ph", "gr-qc"])
    yymm = rng.choice([9203, 9511, 9711, 9912, 102, 211, 405, 612])
    number = f"{yymm:04d}{rng.randint(1, 999):03d}"
    if kind == "oldsub":
        sub = rng.choice(["math.GT", "math.AG", "cs.LG", "physics.optics"])
        base = sub.split(".")[0]
        return f"{sub}/{number}", f"{base}/{number}"
    return f"{archive}/{number}", f"{archive}/{number}"


def _paper_url(rng: random.Random) -> tuple[str, str]:
    template, kinds = rng.choice(URL_FORMS)
    written, canon = _new_id(rng, rng.choice(kinds))
    version = f"v{rng.randint(1, 4)}" if "{v}" in template and rng.random() < 0.4 else ""
    return template.format(id=written, v=version), canon


def _display(url: str) -> str:
    """How X and Bluesky shorten a link for display: no scheme, cut with an ellipsis."""
    bare = url.split("://", 1)[-1]
    return bare if len(bare) <= 24 else bare[:21] + "..."


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _pad_to(obj: dict[str, Any], field: list[str], rng: random.Random) -> bytes:
    """Grow a filler string until the serialised object is about TARGET_BYTES."""
    line = json.dumps(obj, separators=(",", ":")).encode()
    holder: Any = obj
    for key in field[:-1]:
        holder = holder[int(key)] if isinstance(holder, list) else holder[key]
    while len(line) < TARGET_BYTES - 40:
        holder[field[-1]] += " " + _words(rng, 6)
        line = json.dumps(obj, separators=(",", ":")).encode()
    return line


def _x_post(rng: random.Random, i: int, when: datetime) -> Post:
    tweet_id = str(1_700_000_000_000_000_000 + i)
    user_id = str(10_000_000 + rng.randint(0, 99_999))
    truth: set[str] = set()
    links: list[tuple[str, str]] = []
    for _ in range(rng.choice([0, 1, 1, 1, 2, 2, 3])):
        url, canon = _paper_url(rng)
        links.append((url, canon))
        truth.add(canon)
    if rng.random() < 0.3:
        links.append((rng.choice(NON_PAPER_URLS), ""))
    rng.shuffle(links)
    text = _words(rng, rng.randint(8, 25))
    entities = []
    for k, (url, _) in enumerate(links):
        tco = f"https://t.co/{rng.getrandbits(40):010x}"
        entry: dict[str, Any] = {
            "start": len(text) + 1,
            "end": len(text) + 24,
            "url": tco,
            "expanded_url": url,
            "display_url": _display(url).replace("...", "\u2026"),
        }
        if k % 2 == 0:
            entry["unwound_url"] = url
        entities.append(entry)
        text += " " + tco
    if rng.random() < 0.15:  # a plain-text mention
        written, canon = _new_id(rng, "new5")
        text += f" (arXiv:{written}v2)"
        truth.add(canon)
    if rng.random() < 0.1:  # a truncated display string in the text: no ID from it
        text += " arxiv.org/abs/2401.1\u2026"
    obj: dict[str, Any] = {
        "data": {
            "id": tweet_id,
            "author_id": user_id,
            "created_at": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conversation_id": tweet_id,
            "lang": "en",
            "text": text,
            "entities": {"urls": entities},
            "public_metrics": {
                "retweet_count": rng.randint(0, 50),
                "reply_count": rng.randint(0, 9),
                "like_count": rng.randint(0, 500),
                "quote_count": 0,
            },
            "edit_history_tweet_ids": [tweet_id],
            "possibly_sensitive": False,
            "reply_settings": "everyone",
            "source": "Twitter Web App",
        },
        "includes": {
            "users": [
                {
                    "id": user_id,
                    "username": f"user{user_id}",
                    "name": "Research Person",
                    "description": "",
                }
            ]
        },
        "matching_rules": [{"id": "1600000000000000000", "tag": "arxiv"}],
    }
    line = _pad_to(obj, ["includes", "users", "0", "description"], rng)
    return Post(line, [u for u, _ in links], frozenset(truth))


def _bsky_post(rng: random.Random, i: int, when: datetime) -> Post:
    did = f"did:plc:{rng.getrandbits(120):030x}"
    truth: set[str] = set()
    url, canon = _paper_url(rng) if rng.random() < 0.85 else (rng.choice(NON_PAPER_URLS), "")
    if canon:
        truth.add(canon)
    prefix = _words(rng, rng.randint(5, 20)) + " "
    shown = _display(url)
    start = len(prefix.encode())
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "createdAt": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "langs": ["en"],
        "text": prefix + shown,
        "facets": [
            {
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
                "index": {"byteStart": start, "byteEnd": start + len(shown.encode())},
            }
        ],
    }
    urls = [url]
    if rng.random() < 0.5:
        ext_url, ext_canon = _paper_url(rng)
        urls.append(ext_url)
        if ext_canon:
            truth.add(ext_canon)
        record["embed"] = {
            "$type": "app.bsky.embed.external",
            "external": {
                "uri": ext_url,
                "title": "A paper title",
                "description": "",
                "thumb": {
                    "$type": "blob",
                    "ref": {"$link": f"bafkrei{rng.getrandbits(200):050x}"},
                    "mimeType": "image/jpeg",
                    "size": rng.randint(1000, 90000),
                },
            },
        }
        pad_path = ["commit", "record", "embed", "external", "description"]
    else:
        record["padding_note"] = ""
        pad_path = ["commit", "record", "padding_note"]
    obj = {
        "did": did,
        "time_us": int(when.timestamp() * 1_000_000) + rng.randint(0, 999_999),
        "kind": "commit",
        "commit": {
            "rev": f"3m{rng.getrandbits(50):011x}",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": f"3m{rng.getrandbits(50):011x}",
            "record": record,
            "cid": f"bafyrei{rng.getrandbits(250):052x}",
        },
    }
    line = _pad_to(obj, pad_path, rng)
    return Post(line, urls, frozenset(truth))


def generate(n: int, seed: int) -> list[Post]:
    """The ``arxiv`` corpus: ``n`` posts with arXiv links (60% X v2, 40% Bluesky)."""
    rng = random.Random(seed)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    posts = []
    for i in range(n):
        when = start + timedelta(seconds=i)
        posts.append(_x_post(rng, i, when) if rng.random() < 0.6 else _bsky_post(rng, i, when))
    return posts


# ---------------------------------------------------------------------------------
# The realistic mix
# ---------------------------------------------------------------------------------

CHATTER = [
    "so good",
    "thread \U0001f9f5",
    "caf\u00e9 notes",
    "na\u00efve question",
    "wow \U0001f525",
]
OTHER_URLS = [
    "https://github.com/huggingface/transformers",
    "https://www.nature.com/articles/s41586-024-07566-y",
    "https://bsky.app/profile/someone.bsky.social",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://en.wikipedia.org/wiki/Attention_(machine_learning)",
    "https://www.biorxiv.org/content/10.1101/2024.01.12.575432v1",
]


class _Papers:
    """Cited papers drawn Zipf-like (s = 1.1) from a fixed pool: trending papers repeat."""

    def __init__(self, rng: random.Random, size: int = 5000) -> None:
        self.pool = [_new_id(rng, rng.choice(["new5"] * 8 + ["new4", "old"])) for _ in range(size)]
        weights = [1.0 / (rank + 1) ** 1.1 for rank in range(size)]
        self.cumulative = list(itertools.accumulate(weights))

    def url(self, rng: random.Random) -> tuple[str, str]:
        written, canon = rng.choices(self.pool, cum_weights=self.cumulative)[0]
        if "/" in written:  # old-style: only forms that take them
            template = rng.choice(
                ["https://arxiv.org/abs/{id}{v}", "https://arxiv.org/pdf/{id}{v}"]
            )
        else:
            template, _ = rng.choice(URL_FORMS)
        version = f"v{rng.randint(1, 4)}" if "{v}" in template and rng.random() < 0.4 else ""
        return template.format(id=written, v=version), canon


def _dump(obj: dict[str, Any]) -> bytes:
    # Real X and Jetstream lines carry UTF-8 as is, not \\u escapes.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _pad_utf8(obj: dict[str, Any], holder: dict[str, Any], key: str, rng: random.Random) -> bytes:
    line = _dump(obj)
    while len(line) < TARGET_BYTES - 40:
        holder[key] += " " + _words(rng, 6)
        line = _dump(obj)
    return line


def _x_entity(rng: random.Random, text: str, url: str) -> tuple[str, dict[str, Any]]:
    tco = f"https://t.co/{rng.getrandbits(40):010x}"
    entry = {
        "start": len(text) + 1,
        "end": len(text) + 24,
        "url": tco,
        "expanded_url": url,
        "display_url": _display(url).replace("...", "\u2026"),
    }
    if rng.random() < 0.5:
        entry["unwound_url"] = url
    return text + " " + tco, entry


def _x_mixed(rng: random.Random, i: int, when: datetime, papers: _Papers) -> Post:
    tweet_id = str(1_800_000_000_000_000_000 + i)
    user_id = str(10_000_000 + rng.randint(0, 99_999))
    truth: set[str] = set()
    urls: list[str] = []
    text = _words(rng, rng.randint(6, 20))
    if rng.random() < 0.2:
        text += " " + rng.choice(CHATTER)
    entities: list[dict[str, Any]] = []
    cites = rng.random() < 0.7  # the filtered stream's rules match paper links mostly
    for _ in range(rng.choice([1, 1, 1, 2]) if cites else rng.choice([0, 1])):
        url, canon = papers.url(rng) if cites else (rng.choice(OTHER_URLS), "")
        text, entry = _x_entity(rng, text, url)
        entities.append(entry)
        urls.append(url)
        if canon:
            truth.add(canon)
    tweet: dict[str, Any] = {
        "id": tweet_id,
        "author_id": user_id,
        "created_at": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conversation_id": tweet_id,
        "lang": "en",
        "text": text,
        "entities": {"urls": entities},
        "public_metrics": {
            "retweet_count": 3,
            "reply_count": 0,
            "like_count": 12,
            "quote_count": 0,
        },
        "edit_history_tweet_ids": [tweet_id],
    }
    users = [{"id": user_id, "username": f"user{user_id}", "name": "R. P.", "description": ""}]
    includes: dict[str, Any] = {"users": users}
    if rng.random() < 0.15:  # a retweet: truncated text, the original in includes.tweets
        orig_id, orig_user = str(int(tweet_id) - 7), str(20_000_000 + rng.randint(0, 999))
        original = dict(tweet, id=orig_id, author_id=orig_user)
        tweet = {
            "id": tweet_id,
            "author_id": user_id,
            "created_at": tweet["created_at"],
            "text": f"RT @user{orig_user}: " + text[:100] + "\u2026",
            "referenced_tweets": [{"type": "retweeted", "id": orig_id}],
            "edit_history_tweet_ids": [tweet_id],
        }
        includes["tweets"] = [original]
        users.append(
            {"id": orig_user, "username": f"user{orig_user}", "name": "O.", "description": ""}
        )
        urls = []  # the original system read only the retweet's own entities
    obj = {"data": tweet, "includes": includes, "matching_rules": [{"id": "1", "tag": "arxiv"}]}
    return Post(_pad_utf8(obj, users[0], "description", rng), urls, frozenset(truth))


def _bsky_mixed(rng: random.Random, i: int, when: datetime, papers: _Papers) -> Post:
    did = f"did:plc:{rng.getrandbits(120):030x}"
    time_us = int(when.timestamp() * 1_000_000) + rng.randint(0, 999_999)
    rkey = f"3m{rng.getrandbits(50):011x}"
    roll = rng.random()
    if roll < 0.10:  # a repost: its subject's papers are joined downstream
        repost: dict[str, Any] = {
            "$type": "app.bsky.feed.repost",
            "createdAt": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "subject": {"cid": "bafyrei" + "a" * 52, "uri": f"at://{did}/app.bsky.feed.post/3l"},
        }
        head = {"operation": "create", "collection": "app.bsky.feed.repost", "rkey": rkey}
        obj = {
            "did": did,
            "time_us": time_us,
            "kind": "commit",
            "commit": head | {"record": repost},
        }
        return Post(_dump(obj), [], frozenset())
    if roll < 0.15:  # a delete
        head = {"operation": "delete", "collection": "app.bsky.feed.post", "rkey": rkey}
        obj = {"did": did, "time_us": time_us, "kind": "commit", "commit": head}
        return Post(_dump(obj), [], frozenset())
    truth: set[str] = set()
    urls: list[str] = []
    text = _words(rng, rng.randint(5, 30))
    if rng.random() < 0.3:
        text += " " + rng.choice(CHATTER)
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "createdAt": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "langs": ["en"],
        "text": text,
    }
    link: tuple[str, str] | None = None
    if rng.random() < 0.12:
        link = papers.url(rng)
    elif rng.random() < 0.25:
        link = (rng.choice(OTHER_URLS), "")
    if link is not None:
        url, canon = link
        shown = _display(url)
        start = len((text + " ").encode())
        record["text"] = text + " " + shown
        record["facets"] = [
            {
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
                "index": {"byteStart": start, "byteEnd": start + len(shown.encode())},
            }
        ]
        urls.append(url)
        if canon:
            truth.add(canon)
    embed_roll = rng.random()
    pad_holder: dict[str, Any] = record
    pad_key = "text"
    if embed_roll < 0.2:
        ext_url, ext_canon = papers.url(rng) if link and link[1] else (rng.choice(OTHER_URLS), "")
        external: dict[str, Any] = {"uri": ext_url, "title": "A title", "description": ""}
        record["embed"] = {"$type": "app.bsky.embed.external", "external": external}
        urls.append(ext_url)
        if ext_canon:
            truth.add(ext_canon)
        pad_holder, pad_key = external, "description"
    elif embed_roll < 0.4:
        image: dict[str, Any] = {
            "alt": "",
            "image": {"$type": "blob", "ref": {"$link": "bafkrei" + "b" * 52}},
        }
        record["embed"] = {"$type": "app.bsky.embed.images", "images": [image]}
        pad_holder, pad_key = image, "alt"
    if rng.random() < 0.3:
        parent = {"cid": "bafyrei" + "c" * 52, "uri": f"at://{did}/app.bsky.feed.post/3k"}
        record["reply"] = {"parent": parent, "root": parent}
    commit: dict[str, Any] = {
        "rev": f"3m{rng.getrandbits(50):011x}",
        "operation": "create",
        "collection": "app.bsky.feed.post",
        "rkey": rkey,
        "record": record,
        "cid": f"bafyrei{rng.getrandbits(250):052x}",
    }
    obj = {"did": did, "time_us": time_us, "kind": "commit", "commit": commit}
    if pad_holder is record:  # grow the post text only up to Bluesky's limit
        record["text"] = record["text"][:300]
        record["padding"] = ""
        pad_key = "padding"
    return Post(_pad_utf8(obj, pad_holder, pad_key, rng), urls, frozenset(truth))


def generate_mixed(n: int, seed: int) -> list[Post]:
    """The ``mixed`` corpus: 30% X v2 filtered-stream messages, 70% Jetstream commits."""
    rng = random.Random(seed)
    papers = _Papers(rng)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        when = start + timedelta(seconds=i)
        maker = _x_mixed if rng.random() < 0.3 else _bsky_mixed
        out.append(maker(rng, i, when, papers))
    return out


CORPORA: dict[str, Callable[[int, int], list[Post]]] = {"arxiv": generate, "mixed": generate_mixed}


# ---------------------------------------------------------------------------------
# The measured pipelines. Each returns one set of IDs per post.
# ---------------------------------------------------------------------------------


def run_ours(posts: Sequence[Post]) -> list[frozenset[str]]:
    out = []
    for p in posts:
        ids: set[str] = set()
        for post in parse_line(p.line):
            ids.update(post.arxiv_ids)
        out.append(frozenset(ids))
    return out


def run_ours_general(posts: Sequence[Post]) -> list[frozenset[str]]:
    loads = orjson.loads
    out = []
    for p in posts:
        ids: set[str] = set()
        for post in parse_payload(loads(p.line)):
            ids.update(post.arxiv_ids)
        out.append(frozenset(ids))
    return out


def run_regex_only(posts: Sequence[Post]) -> list[frozenset[str]]:
    search = ORIGINAL_RE.search
    out = []
    for p in posts:
        ids = set()
        for url in p.urls:
            m = search(url)
            if m:
                ids.add(m.group(0).rsplit("/", 1)[1])
        out.append(frozenset(ids))
    return out


def _urls_of(obj: dict[str, Any]) -> list[str]:
    """The link URLs the original system read: X ``entities.urls``, Bluesky facets/embed."""
    if "data" in obj:
        entities = obj["data"].get("entities") or {}
        return [u.get("expanded_url", "") for u in entities.get("urls", [])]
    record = obj.get("commit", {}).get("record") or {}
    urls = [f["uri"] for fc in record.get("facets", []) for f in fc["features"] if "uri" in f]
    ext = (record.get("embed") or {}).get("external")
    if ext:
        urls.append(ext["uri"])
    return urls


def run_original_pipeline(posts: Sequence[Post]) -> list[frozenset[str]]:
    search = ORIGINAL_RE.search
    out = []
    for p in posts:
        ids = set()
        for url in _urls_of(json.loads(p.line)):
            m = search(url)
            if m:
                ids.add(m.group(0).rsplit("/", 1)[1])
        out.append(frozenset(ids))
    return out


Pipeline = Callable[[Sequence[Post]], list[frozenset[str]]]
PIPELINES: dict[str, Pipeline] = {
    "ours: parse_line": run_ours,
    "ours, general path: orjson + parse_payload": run_ours_general,
    "original: json.loads + regex": run_original_pipeline,
    "original regex over URLs only": run_regex_only,
}
OURS, BASELINE = "ours: parse_line", "original: json.loads + regex"


def _measure(posts: Sequence[Post], repeat: int) -> dict[str, dict[str, Any]]:
    """Run every pipeline ``repeat`` times, interleaved, rotating the order each round."""
    names = list(PIPELINES)
    cpu: dict[str, list[float]] = {name: [] for name in names}
    wall: dict[str, list[float]] = {name: [] for name in names}
    found: dict[str, list[frozenset[str]]] = {}
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            arxiv_id_from_url_cached.cache_clear()  # every run starts with a cold URL cache
            gc.collect()
            c0, w0 = time.thread_time(), time.perf_counter()
            found[name] = PIPELINES[name](posts)
            cpu[name].append(time.thread_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    n = len(posts)
    return {
        name: {
            "pipeline": name,
            "posts_per_s": n / statistics.median(cpu[name]),
            "posts_per_s_best": n / min(cpu[name]),
            "posts_per_s_wall": n / statistics.median(wall[name]),
            "cpu_seconds": cpu[name],
            "wall_seconds": wall[name],
        }
        | _score(posts, found[name])
        for name in names
    }


def _score(posts: Sequence[Post], found: Sequence[frozenset[str]]) -> dict[str, Any]:
    truth_total = sum(len(p.truth) for p in posts)
    hits = sum(len(p.truth & f) for p, f in zip(posts, found, strict=True))
    false_ids = sum(len(f - p.truth) for p, f in zip(posts, found, strict=True))
    exact = sum(1 for p, f in zip(posts, found, strict=True) if f == p.truth)
    return {
        "recall": hits / truth_total if truth_total else 1.0,
        "false_ids": false_ids,
        "exact_posts": exact,
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _load() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _bench_corpus(name: str, n: int, seed: int, repeat: int) -> dict[str, Any]:
    posts = CORPORA[name](n, seed)
    sizes = [len(p.line) for p in posts]
    with_papers = sum(1 for p in posts if p.truth)
    print(
        f"\n[{name}] {len(posts)} lines, mean {sum(sizes) / len(sizes):.0f} B, "
        f"{with_papers / len(posts):.0%} cite papers, "
        f"{sum(len(p.truth) for p in posts)} paper mentions, seed {seed}"
    )
    load_before = _load()
    rows = _measure(posts, repeat)
    load_after = _load()
    ours, base = rows[OURS]["posts_per_s"], rows[BASELINE]["posts_per_s"]
    for row in rows.values():
        row["ours_speed_ratio"] = ours / row["posts_per_s"]
    print(f"load average (1/5/15 min) before {load_before}, after {load_after}")
    print(
        f"{'pipeline':44} {'posts/s cpu':>12} {'best':>10} {'wall':>10} {'ours x':>7} "
        f"{'recall':>7} {'false':>6}"
    )
    for row in rows.values():
        print(
            f"{row['pipeline']:44} {row['posts_per_s']:12,.0f} {row['posts_per_s_best']:10,.0f} "
            f"{row['posts_per_s_wall']:10,.0f} {row['ours_speed_ratio']:7.2f} "
            f"{row['recall']:7.1%} {row['false_ids']:6d}"
        )
    print(f"ours / original pipeline (median CPU rates): {ours / base:.2f}")
    return {
        "corpus": name,
        "posts": len(posts),
        "mean_post_bytes": sum(sizes) / len(sizes),
        "share_citing_papers": with_papers / len(posts),
        "paper_mentions": sum(len(p.truth) for p in posts),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "ours_over_original_pipeline": ours / base,
        "rows": list(rows.values()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--posts", type=int, default=20_000, help="lines per corpus (20000)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per pipeline; medians kept")
    ap.add_argument("--seed", type=int, default=20240101)
    ap.add_argument("--corpus", default="arxiv,mixed", help="comma-separated: arxiv, mixed")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "bench" / "results" / "extract.json")
    args = ap.parse_args(argv)
    if args.posts < 1 or args.repeat < 1:
        ap.error("--posts and --repeat must be positive")
    corpora = [c for c in args.corpus.split(",") if c]
    if not corpora or set(corpora) - set(CORPORA):
        ap.error(f"--corpus takes a comma-separated subset of {sorted(CORPORA)}")

    if hasattr(os, "sched_setaffinity"):  # one core, as the goal is stated per core
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    results = [_bench_corpus(name, args.posts, args.seed, args.repeat) for name in corpora]
    result = {
        "benchmark": "extract",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "posts_per_corpus": args.posts,
        "seed": args.seed,
        "repeat": args.repeat,
        "rate": "posts per second of thread CPU time, median of the repeats",
        "goal_posts_per_s": 100_000,
        "corpora": results,
        # Flat list for bench/run_all.py's summary (one row per corpus and pipeline).
        "rows": [
            row | {"pipeline": f"[{c['corpus']}] {row['pipeline']}"}
            for c in results
            for row in c["rows"]
        ],
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "cores_used": 1,
            "load_average_1_5_15": _load(),
        },
        "libraries": _libraries(),
        "git_commit": _git_commit(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nsaved {args.out}")
    return 0


def _libraries() -> dict[str, str]:
    import msgspec

    return {"orjson": orjson.__version__, "msgspec": msgspec.__version__}


if __name__ == "__main__":
    raise SystemExit(main())
