"""Benchmark: posts/s of parse + arXiv-ID extraction vs. the original system's regex.

Generates a deterministic mixed corpus (X API v2 stream messages and Bluesky Jetstream
post commits, ~1.5 KB each, every supported URL form plus traps), then in one run:

* ours: ``parse_line`` on each raw line (JSON decoding, normalisation, extraction);
* baseline A: the original regex ``arxiv.org/(abs|pdf)/\\d{4}\\.\\d{5}`` alone over the
  same link URLs (pre-extracted, so it pays no JSON cost at all);
* baseline B: the original pipeline shape: stdlib ``json.loads`` + the same regex.

Prints a table (rate, ratio to ours, recall and false IDs against the generated ground
truth) and writes ``bench/results/extract.json``.

    python bench/bench_extract.py [--posts N] [--repeat R] [--seed S]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import platform
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trending_arxiv.ids import _id_from_url  # noqa: E402
from trending_arxiv.posts import parse_line  # noqa: E402

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
    """A deterministic mixed corpus of ``n`` posts (60% X v2, 40% Bluesky)."""
    rng = random.Random(seed)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    posts = []
    for i in range(n):
        when = start + timedelta(seconds=i)
        posts.append(_x_post(rng, i, when) if rng.random() < 0.6 else _bsky_post(rng, i, when))
    return posts


# ---------------------------------------------------------------------------------
# The measured pipelines. Each returns one set of IDs per post.
# ---------------------------------------------------------------------------------


def run_ours(posts: Sequence[Post]) -> list[frozenset[str]]:
    # Start cold: the URL cache must not carry answers over from a previous repeat.
    _id_from_url.cache_clear()
    out = []
    for p in posts:
        ids: set[str] = set()
        for post in parse_line(p.line):
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
    if "data" in obj:
        return [u.get("expanded_url", "") for u in obj["data"].get("entities", {}).get("urls", [])]
    record = obj["commit"]["record"]
    urls = [f["uri"] for fc in record.get("facets", []) for f in fc["features"] if "uri" in f]
    ext = record.get("embed", {}).get("external")
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


def _time(fn: Callable[[Sequence[Post]], list[frozenset[str]]], posts: Sequence[Post], repeat: int):
    best = float("inf")
    result: list[frozenset[str]] = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn(posts)
        best = min(best, time.perf_counter() - t0)
    return best, result


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--posts", type=int, default=50_000, help="corpus size (default 50000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per pipeline, best kept")
    ap.add_argument("--seed", type=int, default=20240101)
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "bench" / "results" / "extract.json")
    args = ap.parse_args(argv)
    if args.posts < 1 or args.repeat < 1:
        ap.error("--posts and --repeat must be positive")

    if hasattr(os, "sched_setaffinity"):  # one core, as the goal is stated per core
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    posts = generate(args.posts, args.seed)
    sizes = [len(p.line) for p in posts]
    print(
        f"corpus: {len(posts)} posts, mean {sum(sizes) / len(sizes):.0f} B, "
        f"{sum(len(p.truth) for p in posts)} paper mentions, seed {args.seed}"
    )

    pipelines = {
        "ours: parse_line + extract": run_ours,
        "original regex over URLs only": run_regex_only,
        "original: json.loads + regex": run_original_pipeline,
    }
    rows = []
    for name, fn in pipelines.items():
        seconds, found = _time(fn, posts, args.repeat)
        rows.append(
            {"pipeline": name, "seconds": seconds, "posts_per_s": len(posts) / seconds}
            | _score(posts, found)
        )
    ours_rate = rows[0]["posts_per_s"]
    for row in rows:
        row["ours_speed_ratio"] = ours_rate / row["posts_per_s"]

    if hasattr(os, "getloadavg"):
        print("load average (1/5/15 min): " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"{'pipeline':32} {'posts/s':>11} {'ours x':>7} {'recall':>7} {'false IDs':>9}")
    for row in rows:
        print(
            f"{row['pipeline']:32} {row['posts_per_s']:11,.0f} {row['ours_speed_ratio']:7.2f} "
            f"{row['recall']:7.1%} {row['false_ids']:9d}"
        )

    result = {
        "benchmark": "extract",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "posts": len(posts),
        "mean_post_bytes": sum(sizes) / len(sizes),
        "seed": args.seed,
        "repeat": args.repeat,
        "goal_posts_per_s": 100_000,
        "rows": rows,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "cores_used": 1,
            "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "json_library": _json_library(),
        "git_commit": _git_commit(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")
    return 0


def _json_library() -> str:
    try:
        import orjson
    except ImportError:
        return "json (stdlib)"
    return f"orjson {orjson.__version__}"


if __name__ == "__main__":
    raise SystemExit(main())
