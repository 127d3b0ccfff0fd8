#!/usr/bin/env python3
"""Generate a hostile JSON-lines corpus: good posts in real shapes mixed with bad lines.

Good lines are X API v2 stream messages, Bluesky Jetstream commits (posts, reposts,
deletes) and Mastodon statuses whose links and text name arXiv papers in thousands of
written forms (hosts, paths, versions, old-style IDs, case, punctuation), plus exact
duplicates, hostile-but-valid text (HTML/JS, control and bidi characters, lone surrogate
escapes, 300 KB texts) and posts naming no paper. Bad lines are what a stream must
dead-letter: truncated JSON, wrong types, huge junk, deep nesting (100k arrays),
invalid UTF-8, unknown sources, huge integer literals, top-level scalars.

Every line is labelled (`bad`, `category`) by construction; the reference counts of a
corpus come from `trending_arxiv.core.simulate.simulate` on the same lines.

    python tools/fuzz_corpus.py OUT.jsonl [--posts 10000] [--bad-fraction 0.3] [--seed 8]
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 3, 1, tzinfo=UTC)
OLD_ARCHIVES = ("hep-th", "hep-ph", "astro-ph", "quant-ph", "cond-mat", "gr-qc", "math", "cs")
OLD_SUBJECTS = ("math.AG", "math.CO", "cond-mat.str-el", "cs.LG", "physics.optics", "q-bio.NC")

# URL templates; {id} is the ID as written and {v} an optional version suffix.
URL_FORMS = (
    "https://arxiv.org/abs/{id}{v}",
    "http://arxiv.org/abs/{id}{v}",
    "https://www.arxiv.org/abs/{id}{v}",
    "https://ARXIV.ORG/abs/{id}{v}",
    "https://arxiv.org/pdf/{id}{v}",
    "https://arxiv.org/pdf/{id}{v}.pdf",
    "https://export.arxiv.org/abs/{id}{v}",
    "https://arxiv.org/abs/{id}{v}?context=cs.LG",
    "https://arxiv.org/abs/{id}{v}#related",
    "https://arxiv.org/html/{id}{v}",
    "https://browse.arxiv.org/abs/{id}{v}",
    "https://ar5iv.org/abs/{id}",
    "https://ar5iv.labs.arxiv.org/html/{id}",
    "https://www.alphaxiv.org/abs/{id}{v}",
    "https://huggingface.co/papers/{id}",
    "https://doi.org/10.48550/arXiv.{id}",
    "arxiv.org/abs/{id}{v}",
)
TEXT_FORMS = (
    "arXiv:{id}{v}",
    "ARXIV:{id}",
    "(arXiv:{id}{v})",
    "see https://arxiv.org/abs/{id}{v}.",
    "new paper: arxiv.org/pdf/{id}{v}!",
    "[https://arxiv.org/abs/{id}]",
)
# Near misses: look like papers, name none (or not a valid one).
NEAR_MISSES = (
    "https://www.biorxiv.org/content/10.1101/2024.01.12.575432v1",
    "https://arxiv.org/list/cs.LG/recent",
    "https://arxiv.org/a/vaswani_a_1",
    "https://example.com/notes-on-2401.12345",
    "arxiv.org/abs/2613.12345",
    "https://arxiv.org/abs/1234.567",
    "https://arxiv.org/abs/…",
    "https://arxiv.org/abs/2401.1…",
)
HOSTILE_TEXT = (
    "<script>alert('x')</script><img src=x onerror=alert(1)>",
    '"><svg/onload=alert(document.cookie)>',
    "\u202eRTL override\u202c zero\u200bwidth \ufeff bom",
    "tab\tcontrol\x01\x02\x1f chars \x7f",
    "emoji 🧪📄🔥 and CJK 論文 and combining e\u0301",
    "NUL \u0000 inside",
    "{{7*7}} ${jndi:ldap://x/a} %s%s%n",
)


@dataclass(frozen=True)
class CorpusLine:
    """One raw line and what it is by construction."""

    raw: bytes
    bad: bool
    category: str


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _Generator:
    """Deterministic builder of corpus lines (one RNG, counters for unique ids)."""

    def __init__(self, seed: int, papers: int, order_safe: bool) -> None:
        self.rng = random.Random(seed)
        self.order_safe = order_safe
        self.reposted: set[tuple[str, str]] = set()
        self.serial = 0
        self.papers = [self._paper_id() for _ in range(papers)]
        self.good: list[bytes] = []
        self.bsky_posts: list[tuple[str, str]] = []  # (did, rkey) of posts made so far

    # -- IDs in many forms ---------------------------------------------------------------
    def _paper_id(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.6:
            return f"{rng.randint(15, 26):02d}{rng.randint(1, 12):02d}.{rng.randint(0, 99999):05d}"
        if roll < 0.75:
            return f"{rng.randint(7, 14):02d}{rng.randint(1, 12):02d}.{rng.randint(1, 9999):04d}"
        archive = rng.choice(OLD_ARCHIVES + OLD_SUBJECTS)
        year = rng.choice([91, 95, 99, 0, 3, 6])
        return f"{archive}/{year:02d}{rng.randint(1, 12):02d}{rng.randint(1, 999):03d}"

    def _version(self) -> str:
        return "" if self.rng.random() < 0.5 else f"v{self.rng.randint(1, 12)}"

    def paper_url(self) -> str:
        arxiv_id = self.rng.choice(self.papers)
        form = self.rng.choice(URL_FORMS)
        url = form.format(id=arxiv_id, v=self._version())
        if self.rng.random() < 0.1:
            url += self.rng.choice([")", ".", ",", "'", "?utm_source=x"])
        return url

    def paper_text(self) -> str:
        arxiv_id = self.rng.choice(self.papers)
        return self.rng.choice(TEXT_FORMS).format(id=arxiv_id, v=self._version())

    def words(self, low: int = 3, high: int = 12) -> str:
        count = self.rng.randint(low, high)
        return " ".join(
            "".join(self.rng.choices(string.ascii_lowercase, k=self.rng.randint(2, 9)))
            for _ in range(count)
        )

    def text_and_links(self) -> tuple[str, list[str]]:
        rng = self.rng
        links: list[str] = []
        parts = [self.words()]
        roll = rng.random()
        if roll < 0.55:
            links.append(self.paper_url())
        elif roll < 0.75:
            parts.append(self.paper_text())
        elif roll < 0.85:
            links += [self.paper_url() for _ in range(rng.randint(2, 4))]
            parts.append(self.paper_text())
        elif roll < 0.93:
            links.append(rng.choice(NEAR_MISSES))
        if rng.random() < 0.08:
            parts.append(rng.choice(HOSTILE_TEXT))
        return " ".join(parts), links

    def when(self) -> datetime:
        return START + timedelta(seconds=self.serial * 7 + self.rng.randint(0, 6))

    # -- good payloads -------------------------------------------------------------------
    def x_post(self) -> bytes:
        self.serial += 1
        tweet_id = str(1_900_000_000_000_000_000 + self.serial)
        author = str(self.rng.randint(1, 400))
        text, links = self.text_and_links()
        urls = []
        for url in links:
            short = "https://t.co/" + "".join(self.rng.choices(string.ascii_letters, k=10))
            start = len(text) + 1
            text += " " + short
            urls.append(
                {"start": start, "end": start + len(short), "url": short, "expanded_url": url}
            )
        data: dict[str, Any] = {
            "id": tweet_id,
            "text": text,
            "author_id": author,
            "created_at": _iso(self.when()),
            "edit_history_tweet_ids": [tweet_id],
        }
        if urls:
            data["entities"] = {"urls": urls}
        return _dumps(
            {
                "data": data,
                "includes": {"users": [{"id": author, "username": f"u{author}", "name": "N"}]},
                "matching_rules": [{"id": "1", "tag": "arxiv"}],
            }
        )

    def bsky_post(self) -> bytes:
        self.serial += 1
        did = f"did:plc:{self.rng.randint(1, 300):024d}"
        rkey = f"3l{self.serial:011d}"
        text, links = self.text_and_links()
        facets = []
        for url in links:
            start = len(text.encode()) + 1
            text += " " + url
            facets.append(
                {
                    "index": {"byteStart": start, "byteEnd": start + len(url.encode())},
                    "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
                }
            )
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "createdAt": _iso(self.when()),
            "text": text,
            "langs": ["en"],
        }
        if facets:
            record["facets"] = facets
        self.bsky_posts.append((did, rkey))
        return _dumps(self._commit(did, "app.bsky.feed.post", rkey, "create", record))

    def _commit(
        self, did: str, collection: str, rkey: str, operation: str, record: Any | None
    ) -> dict[str, Any]:
        commit: dict[str, Any] = {
            "rev": rkey,
            "operation": operation,
            "collection": collection,
            "rkey": rkey,
        }
        if record is not None:
            commit["record"] = record
            commit["cid"] = f"bafyrei{rkey}"
        return {
            "did": did,
            "time_us": int(self.when().timestamp() * 1e6),
            "kind": "commit",
            "commit": commit,
        }

    def bsky_repost(self) -> bytes:
        if not self.bsky_posts:
            return self.bsky_post()
        self.serial += 1
        did, rkey = self.rng.choice(self.bsky_posts)
        self.reposted.add((did, rkey))
        subject = f"at://{did}/app.bsky.feed.post/{rkey}"
        reposter = f"did:plc:{self.rng.randint(301, 600):024d}"
        record = {
            "$type": "app.bsky.feed.repost",
            "createdAt": _iso(self.when()),
            "subject": {"cid": "bafyx", "uri": subject},
        }
        return _dumps(
            self._commit(
                reposter, "app.bsky.feed.repost", f"3r{self.serial:011d}", "create", record
            )
        )

    def bsky_delete(self) -> bytes:
        candidates = [
            i
            for i, post in enumerate(self.bsky_posts)
            if not (self.order_safe and post in self.reposted)
        ]
        if not candidates:
            return self.bsky_post()
        did, rkey = self.bsky_posts.pop(self.rng.choice(candidates))
        self.serial += 1
        return _dumps(self._commit(did, "app.bsky.feed.post", rkey, "delete", None))

    def mastodon_status(self) -> bytes:
        self.serial += 1
        text, links = self.text_and_links()
        anchors = "".join(
            f' <a href="{url}" rel="nofollow noopener" target="_blank">{url[:30]}</a>'
            for url in links
        )
        status_id = str(110_000_000_000_000_000 + self.serial)
        account = self.rng.randint(1, 200)
        return _dumps(
            {
                "id": status_id,
                "uri": f"https://mastodon.example/users/u{account}/statuses/{status_id}",
                "url": f"https://mastodon.example/@u{account}/{status_id}",
                "created_at": _iso(self.when()),
                "content": f"<p>{text}{anchors}</p>",
                "account": {"id": str(account), "acct": f"u{account}", "username": f"u{account}"},
                "reblog": None,
                "in_reply_to_id": None,
            }
        )

    def huge_valid_post(self) -> bytes:
        line = json.loads(self.x_post())
        line["data"]["text"] = ("lorem ipsum " * 25_000) + " " + self.paper_text()
        return _dumps(line)

    def hostile_valid_post(self) -> bytes:
        line = json.loads(self.x_post())
        line["data"]["text"] = self.rng.choice(HOSTILE_TEXT) + " " + self.paper_text()
        raw = json.dumps(line, ensure_ascii=True, separators=(",", ":"))
        if self.rng.random() < 0.3:
            # A lone surrogate escape: valid JSON the stdlib decodes, orjson refuses.
            raw = raw.replace("arXiv:", "\\ud800 arXiv:", 1).replace("ARXIV:", "\\udfff ARXIV:", 1)
        return raw.encode()

    def good_line(self) -> tuple[bytes, str]:
        roll = self.rng.random()
        makers: list[tuple[float, str, Callable[[], bytes]]] = [
            (0.40, "x", self.x_post),
            (0.65, "bluesky", self.bsky_post),
            (0.72, "bluesky-repost", self.bsky_repost),
            (0.75, "bluesky-delete", self.bsky_delete),
            (0.85, "mastodon", self.mastodon_status),
            (0.93, "duplicate", lambda: self.rng.choice(self.good) if self.good else self.x_post()),
            (0.999, "hostile-text", self.hostile_valid_post),
            (1.0, "huge-valid", self.huge_valid_post),
        ]
        for limit, category, make in makers:
            if roll < limit:
                raw = make()
                self.good.append(raw)
                return raw, category
        raise AssertionError("unreachable")

    # -- bad payloads --------------------------------------------------------------------
    def bad_line(self) -> tuple[bytes, str]:
        rng = self.rng
        base = self.good_line()[0]
        self.good.pop()  # the mutated base is not itself in the corpus
        kinds: list[tuple[str, Callable[[], bytes]]] = [
            ("truncated", lambda: base[: rng.randint(1, len(base) - 2)]),
            ("wrong-type", self._wrong_type),
            ("invalid-utf8", lambda: self._invalid_utf8(base)),
            ("unknown-source", self._unknown_source),
            ("not-json", self._not_json),
            ("scalar", lambda: rng.choice([b"42", b'"just a string"', b"null", b"true", b"[1,2]"])),
            ("huge-junk", lambda: b"{" + rng.randbytes(8).hex().encode() * 40_000),
            ("deep-nesting", self._deep),
            ("huge-int", lambda: base[:-1] + b',"n":1' + b"0" * 5000 + b"}"),
        ]
        weights = [20, 25, 10, 15, 10, 6, 0.3, 0.7, 2]
        category, make = rng.choices(kinds, weights=weights)[0]
        return make(), category

    def _wrong_type(self) -> bytes:
        rng = self.rng
        junk = rng.choice([[1, 2], {"a": 1}, 3.5, True, None, ""])
        choices: list[Callable[[], Any]] = [
            lambda: {"data": {"id": junk, "text": "arXiv:2401.00001"}},
            lambda: {"data": {"id": "7", "text": rng.choice([5, [1], {"t": "x"}, True])}},
            lambda: {"data": {"id": "7", "text": "x", "entities": {"urls": "arxiv.org/abs/1"}}},
            lambda: {"data": rng.choice(["x", 5, True])},
            lambda: {"data": [{"id": "7", "text": "x"}, 5]},
            lambda: {"did": "did:plc:a", "kind": "commit", "commit": rng.choice(["x", 5, [1]])},
            lambda: {
                "did": rng.choice([42, ["x"], {"d": 1}]),
                "kind": "commit",
                "commit": {"collection": "app.bsky.feed.post", "rkey": "r", "operation": "create"},
            },
            lambda: {
                "did": "did:plc:a",
                "kind": "commit",
                "commit": {
                    "collection": "app.bsky.feed.post",
                    "rkey": "r",
                    "operation": "create",
                    "record": {"text": rng.choice([5, [1], {"x": 1}])},
                },
            },
            lambda: {
                "did": "did:plc:a",
                "kind": "commit",
                "commit": {"collection": "app.bsky.feed.post", "rkey": "r", "operation": "smash"},
            },
            lambda: {"uri": rng.choice([5, None, ""]), "content": "x", "account": {}},
            lambda: {"uri": "u", "content": rng.choice([5, [1], {"c": 1}]), "account": {}},
        ]
        return _dumps(rng.choice(choices)())

    def _invalid_utf8(self, base: bytes) -> bytes:
        bad = self.rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80\x80"])
        # Inside the first string value, so that only the encoding is wrong.
        at = base.find(b'":"') + 3
        return base[:at] + bad + base[at:]

    def _unknown_source(self) -> bytes:
        rng = self.rng
        keys = rng.sample(["foo", "post", "body", "tweet", "toot", "note", "msg", "feed"], 3)
        obj: dict[str, Any] = {k: self.words(1, 4) for k in keys}
        if rng.random() < 0.5:
            obj["url"] = self.paper_url()  # names a paper, still not a post we know
        if rng.random() < 0.3:
            obj = {"did": "did:plc:a", "kind": rng.choice(["tombstone", "", "x", 5])}
        return _dumps(obj)

    def _not_json(self) -> bytes:
        return self.rng.choice(
            [
                b"\x00\x00\x00",
                b"not json at all https://arxiv.org/abs/2401.00001",
                b"{'single': 'quotes'}",
                b'{"data": {"id": "1", "text": NaN}}',
                b'{"a":1}{"b":2}',
                b"\xef\xbb\xbf{bom}",
                b'{"data": {"id": "1",, "text": "x"}}',
                self.rng.randbytes(64).replace(b"\n", b" ").replace(b"\r", b" "),
            ]
        )

    def _deep(self) -> bytes:
        depth = self.rng.choice([2_000, 20_000, 100_000])
        if self.rng.random() < 0.5:
            return b"[" * depth + b"]" * depth
        inner = b'{"a":' * depth + b"1" + b"}" * depth
        return b'{"data":{"id":"9","text":"arXiv:2401.00001","entities":' + inner + b"}}"


def generate(
    total: int = 10_000,
    bad_fraction: float = 0.3,
    seed: int = 8,
    papers: int = 400,
    order_safe: bool = False,
) -> list[CorpusLine]:
    """`total` labelled lines, about `bad_fraction` of them bad, deterministic per seed.

    `order_safe` never deletes a post that was reposted: whether such a repost counts
    depends on whether the stream reads it before the delete, which partition skew
    decides (see tests/faults/test_partition_skew.py).
    """
    if total < 1 or not 0 <= bad_fraction <= 1:
        raise ValueError("need total >= 1 and 0 <= bad_fraction <= 1")
    gen = _Generator(seed, papers, order_safe)
    lines = []
    for _ in range(total):
        if gen.rng.random() < bad_fraction:
            raw, category = gen.bad_line()
            lines.append(CorpusLine(raw, True, category))
        else:
            raw, category = gen.good_line()
            lines.append(CorpusLine(raw, False, category))
    for line in lines:
        # JSON lines: a line may hold any byte but the separator (and must not be blank).
        assert b"\n" not in line.raw and b"\r" not in line.raw and line.raw.strip(), line
    return lines


def write_corpus(lines: list[CorpusLine], path: Path) -> None:
    path.write_bytes(b"".join(line.raw + b"\n" for line in lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="JSON-lines file to write")
    parser.add_argument("--posts", type=int, default=10_000, help="lines in all")
    parser.add_argument("--bad-fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--order-safe", action="store_true", help="never delete a post that was reposted"
    )
    args = parser.parse_args(argv)
    try:
        lines = generate(args.posts, args.bad_fraction, args.seed, order_safe=args.order_safe)
    except ValueError as error:
        parser.error(str(error))
    write_corpus(lines, args.out)
    tally = Counter((("bad" if x.bad else "good"), x.category) for x in lines)
    for (kind, category), count in sorted(tally.items()):
        print(f"{kind:5} {category:15} {count}", file=sys.stderr)
    print(f"wrote {len(lines)} lines to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
