"""The bundled sample reproduces the 2016 page's counts.

This test reads `trending_arxiv/data/seed_posts.jsonl` with its own small, obvious parser
(it deliberately does not use the project's extraction code) so that it checks the data,
not the extractor. Counting rule: a post counts once per distinct paper it mentions; a
retweet mentions its original's papers; a quote adds the quoted tweet's papers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.paths import PACKAGE_DATA as DATA
from tests.fakes.paths import REPO
from tests.fakes.paths import SHARED_SEED as SHARED_SEED_DIR

SHARED_SEED = SHARED_SEED_DIR / "papers.json"
GENERATOR = REPO / "tools" / "make_seed_sample.py"

ARXIV_REF = re.compile(r"(?:arxiv\.org/(?:abs|pdf)/|arxiv:)(\d{4}\.\d{4,5})(?:v\d+)?(?!\d)", re.I)
X_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def load_lines() -> list[dict[str, Any]]:
    with (DATA / "seed_posts.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_papers() -> list[dict[str, Any]]:
    papers: list[dict[str, Any]] = json.loads((DATA / "seed_papers.json").read_text("utf-8"))
    return papers


def ids_in(texts: list[str]) -> set[str]:
    return {match.group(1) for text in texts for match in ARXIV_REF.finditer(text)}


def tweet_texts(tweet: dict[str, Any]) -> list[str]:
    """The tweet's text and the real targets of its links (never the truncated display)."""
    texts = [tweet["text"]]
    for url in tweet.get("entities", {}).get("urls", []):
        texts.append(url["expanded_url"])
        texts.append(url.get("unwound_url", ""))
    return texts


def parse(line: dict[str, Any]) -> tuple[str, datetime, set[str]]:
    """(post id, post time, distinct arXiv ids) of one line; fails on an unknown shape."""
    if "data" in line:
        tweet = line["data"]
        assert X_TIME.match(tweet["created_at"]), tweet["created_at"]
        when = datetime.fromisoformat(tweet["created_at"].replace("Z", "+00:00"))
        included = {t["id"]: t for t in line.get("includes", {}).get("tweets", [])}
        texts = tweet_texts(tweet)
        for ref in tweet.get("referenced_tweets", []):
            if ref["type"] in ("retweeted", "quoted"):
                texts += tweet_texts(included[ref["id"]])
        return tweet["id"], when, ids_in(texts)

    assert line["kind"] == "commit", line
    commit = line["commit"]
    assert commit["operation"] == "create"
    assert commit["collection"] == "app.bsky.feed.post"
    record = commit["record"]
    assert record["createdAt"].endswith("Z"), record["createdAt"]
    when = datetime.fromisoformat(record["createdAt"].replace("Z", "+00:00"))
    texts = [record["text"]]
    for facet in record.get("facets", []):
        for feature in facet["features"]:
            if feature["$type"] == "app.bsky.richtext.facet#link":
                texts.append(feature["uri"])
    texts.append(record.get("embed", {}).get("external", {}).get("uri", ""))
    post_id = f"at://{line['did']}/{commit['collection']}/{commit['rkey']}"
    return post_id, when, ids_in(texts)


def test_counts_reproduce_the_seed_page() -> None:
    counts: Counter[str] = Counter()
    for line in load_lines():
        counts.update(parse(line)[2])
    expected = {paper["arxiv_id"]: paper["seed_posts"] for paper in load_papers()}
    assert len(expected) == 20
    assert dict(counts) == expected
    assert sum(expected.values()) == 198
    assert counts["1602.02410"] == 142


def test_post_ids_are_unique() -> None:
    ids = [parse(line)[0] for line in load_lines()]
    assert len(ids) == len(set(ids))
    assert 200 <= len(ids) <= 260


def test_times_are_utc_and_after_each_papers_date() -> None:
    published = {
        paper["arxiv_id"]: datetime.fromisoformat(paper["published"].replace("Z", "+00:00"))
        for paper in load_papers()
    }
    for line in load_lines():
        post_id, when, arxiv_ids = parse(line)
        assert when.tzinfo is not None and when.utcoffset() == UTC.utcoffset(None), post_id
        assert date(2015, 11, 21) <= when.date() <= date(2016, 2, 10), post_id
        for arxiv_id in arxiv_ids:
            assert when.date() > published[arxiv_id].date(), (post_id, arxiv_id)
        if "time_us" in line:
            # Jetstream receives an event shortly after the client's createdAt.
            received = datetime.fromtimestamp(line["time_us"] / 1_000_000, tz=UTC)
            assert 0 <= (received - when).total_seconds() < 5, post_id


def test_referenced_tweets_are_included_and_older() -> None:
    for line in load_lines():
        if "data" not in line:
            continue
        tweet = line["data"]
        included = {t["id"]: t for t in line["includes"].get("tweets", [])}
        users = {u["id"] for u in line["includes"]["users"]}
        assert tweet["author_id"] in users
        assert line["matching_rules"] and isinstance(line["matching_rules"][0]["id"], str)
        for ref in tweet.get("referenced_tweets", []):
            original = included[ref["id"]]
            assert original["author_id"] in users
            assert original["created_at"] < tweet["created_at"]
            if ref["type"] == "retweeted":
                assert tweet["text"].startswith("RT @")
        for url in tweet.get("entities", {}).get("urls", []):
            assert tweet["text"][url["start"] : url["end"]] == url["url"]
            assert url["url"].startswith("https://t.co/")


def test_sample_covers_the_shapes_it_promises() -> None:
    kinds: Counter[str] = Counter()
    zero = multi = 0
    for line in load_lines():
        arxiv_ids = parse(line)[2]
        zero += not arxiv_ids
        multi += len(arxiv_ids) > 1
        if "data" in line:
            refs = [r["type"] for r in line["data"].get("referenced_tweets", [])]
            kinds[refs[0] if refs else "original"] += 1
        else:
            kinds["bluesky"] += 1
    assert kinds["retweeted"] > 100
    assert min(kinds[k] for k in ("original", "quoted", "replied_to", "bluesky")) >= 3
    assert zero >= 5  # posts without any arXiv paper count nothing
    assert multi >= 3  # posts naming two seed papers count for both


def test_papers_metadata_matches_the_seed() -> None:
    for paper in load_papers():
        assert set(paper) >= {
            "arxiv_id",
            "title",
            "authors",
            "abstract",
            "published",
            "primary_category",
            "categories",
            "seed_posts",
        }
        assert paper["primary_category"] in paper["categories"]
        assert paper["published"].endswith("T00:00:00Z")
    if not SHARED_SEED.exists() and os.environ.get("CI") != "true":
        pytest.skip(f"seed file not present at {SHARED_SEED}")
    seed = json.loads(SHARED_SEED.read_text("utf-8"))
    shipped = load_papers()
    assert [p["arxiv_id"] for p in shipped] == [p["arxiv_id"] for p in seed]
    for ours, theirs in zip(shipped, seed, strict=True):
        assert ours["title"] == theirs["title"]
        assert ours["authors"] == theirs["authors"]
        assert ours["seed_posts"] == theirs["captured_tweets_and_retweets"]
        assert ours["published"].startswith(theirs["submitted"])


def test_generator_is_deterministic(tmp_path: Path) -> None:
    if not SHARED_SEED.exists() and os.environ.get("CI") != "true":
        pytest.skip(f"seed file not present at {SHARED_SEED}")
    subprocess.run(
        [sys.executable, str(GENERATOR), "--seed", str(SHARED_SEED), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    for name in ("seed_posts.jsonl", "seed_papers.json"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
