"""A deterministic corpus of raw posts in real shapes, for the pipeline benchmarks.

Lines are what the producers put on Kafka, unmodified:
- X API v2 filtered-stream messages (`data`, `includes.users`, `matching_rules`): original
  posts, retweets (the original in `includes.tweets`, as X sends it) and quotes;
- Bluesky Jetstream commits: `app.bsky.feed.post` creates with link facets and an
  external embed, and `app.bsky.feed.repost` creates that name only their subject's URI
  (the stream joins them to the subject's papers).

Papers are drawn Zipf-like over `papers` (default 50k) new-style IDs; about 5% of the
posts that cite papers cite several; about 3% cite none (they are filtered out); about
1% of the lines are exact redeliveries of an earlier line (deduplicated downstream).
Lines are padded to about 1 KB (user bios and link-card descriptions, where real
payloads carry their bulk). The same (n, seed, papers) always gives the same bytes.

    python -m bench.corpus --posts 50000 --out /tmp/posts.jsonl[.gz]
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import pathlib
import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, cast

VERSION = 1  # bump when the shapes change, so cached files are regenerated
TARGET_BYTES = 1000
SPAN = timedelta(days=7)
START = datetime(2025, 3, 1, tzinfo=UTC)
MONTHS = [yy * 100 + mm for yy in range(23, 26) for mm in range(1, 13)]

WORDS = [
    "we",
    "propose",
    "a",
    "new",
    "method",
    "for",
    "learning",
    "representations",
    "of",
    "graphs",
    "with",
    "attention",
    "transformer",
    "diffusion",
    "scaling",
    "laws",
    "benchmark",
    "results",
    "show",
    "that",
    "our",
    "model",
    "improves",
    "the",
    "state",
    "of",
    "the",
    "art",
    "on",
    "language",
    "vision",
    "reinforcement",
    "quantum",
    "optimisation",
    "theory",
    "paper",
    "thread",
    "interesting",
    "read",
    "code",
    "released",
    "finally",
    "out",
    "today",
    "preprint",
]
PAPER_FORMS = (
    "https://arxiv.org/abs/{id}",
    "https://arxiv.org/abs/{id}v2",
    "https://arxiv.org/pdf/{id}",
    "https://arxiv.org/pdf/{id}v1.pdf",
    "https://www.arxiv.org/abs/{id}",
    "https://huggingface.co/papers/{id}",
    "https://arxiv.org/html/{id}v1",
)
OTHER_URLS = (
    "https://github.com/example/project",
    "https://www.youtube.com/watch?v=V5lDo-jw8mA",
    "https://www.biorxiv.org/content/10.1101/2024.01.12.575432v1",
)


def paper_ids(n: int) -> list[str]:
    """`n` distinct new-style arXiv IDs (YYMM.NNNNN), spread over 2023-2025."""
    ids = []
    for i in range(n):
        month, slot = MONTHS[i % len(MONTHS)], i // len(MONTHS)
        # 37 * slot stays below 100000 for n up to 97k papers, so IDs never collide.
        ids.append(f"{month:04d}.{(slot * 37 + 11) % 100000:05d}")
    return ids


class Zipf:
    """Draws indices 0..n-1 with probability proportional to 1/(k+1)^s."""

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        self.rng = rng
        total = 0.0
        self.cumulative = []
        for k in range(n):
            total += 1.0 / (k + 1) ** s
            self.cumulative.append(total)
        self.total = total

    def draw(self) -> int:
        return bisect.bisect_left(self.cumulative, self.rng.random() * self.total)


@dataclass
class CorpusStats:
    lines: int = 0
    bytes: int = 0
    x_posts: int = 0
    x_retweets: int = 0
    x_quotes: int = 0
    bluesky_posts: int = 0
    bluesky_reposts: int = 0
    without_papers: int = 0
    several_ids: int = 0
    redeliveries: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def dump_line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _padded(obj: dict[str, Any], holder: dict[str, Any], key: str, rng: random.Random) -> bytes:
    """Fill `holder[key]` so the serialised line is about TARGET_BYTES (two dumps, no loop)."""
    line = dump_line(obj)
    missing = TARGET_BYTES - len(line) + rng.randint(-120, 120)
    if missing > 0:
        filler = (_words(rng, 40) + " ") * (missing // 200 + 1)
        holder[key] = filler[:missing].strip()
        line = dump_line(obj)
    return line


def iso_ms(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class CorpusGenerator:
    """Generates lines one by one; remembers earlier posts for retweets and reposts."""

    def __init__(self, n: int, seed: int = 1, papers: int = 50_000) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.papers = paper_ids(papers)
        self.zipf = Zipf(papers, 1.07, self.rng)
        self.stats = CorpusStats()
        self.x_originals: list[dict[str, Any]] = []  # tweets with papers (retweet targets)
        self.bsky_subjects: list[str] = []  # URIs of Bluesky posts with papers
        self.recent_lines: list[bytes] = []  # candidates for redelivery

    def _cited(self, several: bool) -> list[str]:
        count = self.rng.choice((2, 2, 3, 4)) if several else 1
        ids: list[str] = []
        while len(ids) < count:
            ident = self.papers[self.zipf.draw()]
            if ident not in ids:
                ids.append(ident)
        return ids

    def _papers_for_post(self) -> list[str]:
        roll = self.rng.random()
        if roll < 0.03:
            self.stats.without_papers += 1
            return []
        several = roll > 0.95
        if several:
            self.stats.several_ids += 1
        return self._cited(several)

    # -- X ----------------------------------------------------------------------------

    def _tweet(self, i: int, when: datetime, ids: list[str], author: str) -> dict[str, Any]:
        rng = self.rng
        text = _words(rng, rng.randint(6, 22))
        urls = []
        for ident in ids:
            target = rng.choice(PAPER_FORMS).format(id=ident)
            tco = f"https://t.co/{rng.getrandbits(40):010x}"
            start = len(text) + 1
            urls.append(
                {
                    "start": start,
                    "end": start + 23,
                    "url": tco,
                    "expanded_url": target,
                    "display_url": target.split("://", 1)[1][:21] + "\u2026",
                }
            )
            text += " " + tco
        if not ids:
            target = rng.choice(OTHER_URLS)
            urls.append({"start": 0, "end": 23, "url": "https://t.co/x", "expanded_url": target})
        tweet_id = str(1_800_000_000_000_000_000 + i)
        return {
            "id": tweet_id,
            "author_id": author,
            "created_at": iso_ms(when),
            "conversation_id": tweet_id,
            "lang": "en",
            "text": text,
            "entities": {"urls": urls},
            "public_metrics": {
                "retweet_count": rng.randint(0, 40),
                "reply_count": rng.randint(0, 9),
                "like_count": rng.randint(0, 400),
                "quote_count": rng.randint(0, 3),
            },
            "edit_history_tweet_ids": [tweet_id],
            "possibly_sensitive": False,
            "reply_settings": "everyone",
        }

    def _user(self, author: str) -> dict[str, Any]:
        return {
            "id": author,
            "username": f"researcher{author[-6:]}",
            "name": "Research Person",
            "description": "",
            "verified": False,
        }

    def _message(self, data: dict[str, Any], users: list[dict[str, Any]], **extra: Any) -> bytes:
        includes: dict[str, Any] = {"users": users, **extra}
        obj = {
            "data": data,
            "includes": includes,
            "matching_rules": [{"id": "1780000000000000001", "tag": "arxiv links"}],
        }
        return _padded(obj, users[0], "description", self.rng)

    def x_post(self, i: int, when: datetime) -> bytes:
        author = str(20_000_000 + self.rng.randint(0, 199_999))
        ids = self._papers_for_post()
        tweet = self._tweet(i, when, ids, author)
        if ids:
            self.x_originals.append(tweet)
            if len(self.x_originals) > 5000:
                del self.x_originals[: len(self.x_originals) - 5000]
        self.stats.x_posts += 1
        return self._message(tweet, [self._user(author)])

    def x_retweet(self, i: int, when: datetime) -> bytes:
        original = self.rng.choice(self.x_originals)
        author = str(20_000_000 + self.rng.randint(0, 199_999))
        tweet_id = str(1_800_000_000_000_000_000 + i)
        handle = f"researcher{original['author_id'][-6:]}"
        data = {
            "id": tweet_id,
            "author_id": author,
            "created_at": iso_ms(when),
            "conversation_id": tweet_id,
            "lang": "en",
            "text": f"RT @{handle}: {original['text']}"[:280],
            "referenced_tweets": [{"type": "retweeted", "id": original["id"]}],
            "edit_history_tweet_ids": [tweet_id],
        }
        self.stats.x_retweets += 1
        users = [self._user(author), self._user(original["author_id"])]
        return self._message(data, users, tweets=[original])

    def x_quote(self, i: int, when: datetime) -> bytes:
        original = self.rng.choice(self.x_originals)
        author = str(20_000_000 + self.rng.randint(0, 199_999))
        tweet = self._tweet(i, when, self._cited(False), author)
        tweet["referenced_tweets"] = [{"type": "quoted", "id": original["id"]}]
        self.stats.x_quotes += 1
        users = [self._user(author), self._user(original["author_id"])]
        return self._message(tweet, users, tweets=[original])

    # -- Bluesky ------------------------------------------------------------------------

    def _did(self) -> str:
        return f"did:plc:{self.rng.randint(0, 299_999):06d}{'a' * 18}"

    def _rkey(self, i: int) -> str:
        return f"3l{i:011d}"

    def bsky_post(self, i: int, when: datetime) -> bytes:
        rng = self.rng
        did, rkey = self._did(), self._rkey(i)
        ids = self._papers_for_post()
        targets = [rng.choice(PAPER_FORMS).format(id=ident) for ident in ids] or [
            rng.choice(OTHER_URLS)
        ]
        text = _words(rng, rng.randint(5, 25)) + " "
        facets = []
        for target in targets[:-1] if len(targets) > 1 else targets:
            shown = target.split("://", 1)[1][:24]
            start = len(text.encode())
            text += shown + " "
            facets.append(
                {
                    "features": [{"$type": "app.bsky.richtext.facet#link", "uri": target}],
                    "index": {"byteStart": start, "byteEnd": start + len(shown.encode())},
                }
            )
        external = {
            "uri": targets[-1],
            "title": _words(rng, 8).title(),
            "description": "",
            "thumb": {
                "$type": "blob",
                "ref": {"$link": f"bafkrei{rng.getrandbits(200):050x}"},
                "mimeType": "image/jpeg",
                "size": rng.randint(1000, 90000),
            },
        }
        record = {
            "$type": "app.bsky.feed.post",
            "createdAt": iso_ms(when),
            "langs": ["en"],
            "text": text.strip(),
            "facets": facets,
            "embed": {"$type": "app.bsky.embed.external", "external": external},
        }
        obj = {
            "did": did,
            "time_us": int(when.timestamp() * 1_000_000) + rng.randint(0, 999_999),
            "kind": "commit",
            "commit": {
                "rev": f"3l{rng.getrandbits(50):013x}",
                "operation": "create",
                "collection": "app.bsky.feed.post",
                "rkey": rkey,
                "record": record,
                "cid": f"bafyrei{rng.getrandbits(250):052x}",
            },
        }
        if ids:
            self.bsky_subjects.append(f"at://{did}/app.bsky.feed.post/{rkey}")
            if len(self.bsky_subjects) > 5000:
                del self.bsky_subjects[: len(self.bsky_subjects) - 5000]
        self.stats.bluesky_posts += 1
        return _padded(obj, external, "description", rng)

    def bsky_repost(self, i: int, when: datetime) -> bytes:
        rng = self.rng
        subject = rng.choice(self.bsky_subjects)
        obj = {
            "did": self._did(),
            "time_us": int(when.timestamp() * 1_000_000) + rng.randint(0, 999_999),
            "kind": "commit",
            "commit": {
                "rev": f"3l{rng.getrandbits(50):013x}",
                "operation": "create",
                "collection": "app.bsky.feed.repost",
                "rkey": self._rkey(i),
                "record": {
                    "$type": "app.bsky.feed.repost",
                    "createdAt": iso_ms(when),
                    "subject": {"cid": f"bafyrei{rng.getrandbits(250):052x}", "uri": subject},
                },
                "cid": f"bafyrei{rng.getrandbits(250):052x}",
            },
        }
        self.stats.bluesky_reposts += 1
        return dump_line(obj)  # reposts are small in reality too (~450 bytes)

    # -- the stream ---------------------------------------------------------------------

    def lines(self, when_of: Callable[[int], datetime] | None = None) -> Iterator[bytes]:
        """The lines in order; line `i`'s event time is `when_of(i)` if given (the wall
        clock, for live traffic), else spread evenly over `SPAN` from `START`."""
        step = SPAN / max(1, self.n)
        for i in range(self.n):
            when = START + step * i if when_of is None else when_of(i)
            roll = self.rng.random()
            if roll < 0.01 and self.recent_lines:
                line = self.rng.choice(self.recent_lines)
                self.stats.redeliveries += 1
            elif roll < 0.46 or (roll < 0.56 and not self.x_originals):
                line = self.x_post(i, when)
            elif roll < 0.56:
                line = self.x_retweet(i, when)
            elif roll < 0.59 and self.x_originals:
                line = self.x_quote(i, when)
            elif roll < 0.93 or not self.bsky_subjects:
                line = self.bsky_post(i, when)
            else:
                line = self.bsky_repost(i, when)
            if i % 97 == 0:
                self.recent_lines.append(line)
                if len(self.recent_lines) > 200:
                    self.recent_lines.pop(0)
            self.stats.lines += 1
            self.stats.bytes += len(line) + 1
            yield line


def generate(
    n: int, seed: int = 1, papers: int = 50_000, when_of: Callable[[int], datetime] | None = None
) -> Iterator[bytes]:
    """The `n` raw lines of the corpus (without newlines); `when_of`: see `lines`."""
    return CorpusGenerator(n, seed, papers).lines(when_of)


def _write_lines(handle: IO[bytes], generator: CorpusGenerator) -> None:
    for line in generator.lines():
        handle.write(line + b"\n")


def write_corpus(path: pathlib.Path, n: int, seed: int = 1, papers: int = 50_000) -> CorpusStats:
    """Write the corpus as JSON lines (`.gz`: gzip-compressed); returns its statistics."""
    generator = CorpusGenerator(n, seed, papers)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    if path.suffix == ".gz":
        with gzip.open(tmp, "wb", compresslevel=3) as zipped:
            _write_lines(cast(IO[bytes], zipped), generator)
    else:
        with tmp.open("wb") as plain:
            _write_lines(plain, generator)
    tmp.replace(path)
    return generator.stats


def cached_corpus(n: int, seed: int = 1, papers: int = 50_000) -> pathlib.Path:
    """The corpus file for (n, seed, papers), generated once into the temp directory."""
    directory = pathlib.Path(tempfile.gettempdir()) / "trending-arxiv-bench"
    path = directory / f"posts-v{VERSION}-n{n}-s{seed}-p{papers}.jsonl"
    if not path.exists():
        write_corpus(path, n, seed, papers)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the benchmark corpus (JSON lines).")
    parser.add_argument("--posts", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--papers", type=int, default=50_000)
    parser.add_argument("--out", type=pathlib.Path, required=True, help="FILE.jsonl[.gz]")
    args = parser.parse_args(argv)
    if args.posts < 1 or args.papers < 10:
        parser.error("--posts must be >= 1 and --papers >= 10")
    stats = write_corpus(args.out, args.posts, args.seed, args.papers)
    print(json.dumps({"path": str(args.out), **stats.as_dict()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
