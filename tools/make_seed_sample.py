#!/usr/bin/env python3
"""Generate the bundled sample (`trending_arxiv/data/seed_*`) from the 2016 seed page.

The 2016 "Trending arXiv" page lists 20 papers with "Captured tweets and retweets: N".
This script writes, deterministically (fixed RNG seed, fixed plan):

* `seed_papers.json`: the 20 papers' metadata, with the page's count as `seed_posts`;
* `seed_posts.jsonl`: one raw post per line in real payload shapes (X API v2
  filtered-stream messages and Bluesky Jetstream commit events) whose counts reproduce
  the page exactly.

Counting rule the sample is built for: every post (tweet, retweet, quote, reply,
Bluesky post) counts once for each *distinct* paper it mentions; a retweet mentions the
paper(s) of its original; a quote mentions its own links plus those of the quoted tweet.
Replies only count their own links (their parents in `includes` always link the same
paper, so no reading of replies can change a count).

Usage: python tools/make_seed_sample.py [--seed PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SEED = REPO.parent / "shared" / "seed" / "papers.json"
DEFAULT_OUT = REPO / "trending_arxiv" / "data"

RNG_SEED = 20160209
# The 2016 page was captured on 2016-02-09/10; every post lies inside this window.
WINDOW_START = datetime(2015, 11, 21, tzinfo=UTC)
WINDOW_END = datetime(2016, 2, 9, 23, 59, 0, tzinfo=UTC)
TWITTER_EPOCH_MS = 1288834974657
# Filtered-stream rules: links/mentions of arXiv, and the accounts the page followed.
ARXIV_RULE = {"id": "1458473847200571392", "tag": "arxiv"}
FOLLOWS_RULE = {"id": "1458473847200571393", "tag": "follows"}
B32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"
B32_LOWER = "abcdefghijklmnopqrstuvwxyz234567"
TWEET_LIMIT = 140  # the 2016 limit; retweet texts are cut to it

# Same pattern the sample's own check and the unit test use: abs/pdf URLs and `arXiv:ID`.
ARXIV_REF = re.compile(r"(?:arxiv\.org/(?:abs|pdf)/|arxiv:)(\d{4}\.\d{4,5})(?:v\d+)?(?!\d)", re.I)


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class Account:
    """An X account (fictional handle) as it appears in `includes.users`."""

    id: str
    name: str
    username: str

    def as_user(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "username": self.username}


FIRST = (
    "Ada",
    "Ben",
    "Chloe",
    "Dario",
    "Elena",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Keiko",
    "Lars",
    "Maya",
    "Nadia",
    "Omar",
    "Priya",
    "Quentin",
    "Rosa",
    "Samir",
    "Tara",
    "Ugo",
    "Vera",
    "Wen",
    "Xavier",
    "Yara",
    "Zoltan",
    "Aiko",
    "Bruno",
    "Carmen",
    "Dev",
    "Emil",
    "Fatima",
    "Goran",
    "Hana",
    "Ivan",
    "Julia",
    "Kofi",
    "Lena",
    "Milo",
    "Nora",
)
LAST = (
    "Abbott",
    "Berg",
    "Castillo",
    "Dumont",
    "Ekstrom",
    "Fischer",
    "Garcia",
    "Horvath",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Sato",
    "Tanaka",
    "Urquhart",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
    "Almeida",
    "Brandt",
    "Costa",
    "Dubois",
)


@dataclass
class World:
    """Deterministic source of ids, accounts, times and the posts written so far."""

    rng: random.Random
    lines: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    used_ids: set[str] = field(default_factory=set)
    used_handles: set[str] = field(default_factory=set)

    # -- identifiers --------------------------------------------------------------

    def snowflake(self, moment: datetime) -> str:
        """A tweet id whose embedded timestamp is `moment`, like real 2016 ids."""
        while True:
            ms = int(moment.timestamp() * 1000)
            value = ((ms - TWITTER_EPOCH_MS) << 22) | (self.rng.randrange(32) << 17)
            value |= self.rng.randrange(1 << 17)
            text = str(value)
            if text not in self.used_ids:
                self.used_ids.add(text)
                return text

    def tco(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "https://t.co/" + "".join(self.rng.choice(alphabet) for _ in range(10))

    def b32(self, n: int) -> str:
        return "".join(self.rng.choice(B32_LOWER) for _ in range(n))

    def tid(self, moment: datetime) -> str:
        """An AT Protocol TID (13 sortable base32 chars: microseconds << 10 | clock id)."""
        value = (int(moment.timestamp() * 1_000_000) << 10) | self.rng.randrange(1024)
        chars = []
        for _ in range(13):
            chars.append(B32_SORTABLE[value & 31])
            value >>= 5
        return "".join(reversed(chars))

    def account(self, name: str | None = None, username: str | None = None) -> Account:
        """A new fictional account; the user id is in the range of 2008-2014 accounts."""
        while True:
            first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
            full = name or f"{first} {last}"
            style = self.rng.randrange(4)
            handle = username or (
                f"{first}{last}".lower()
                if style == 0
                else f"{first.lower()}_{last.lower()[:4]}"
                if style == 1
                else f"{first[0].lower()}{last.lower()}{self.rng.randrange(10, 99)}"
                if style == 2
                else f"{last.lower()}{first[0].lower()}"
            )
            if handle not in self.used_handles:
                self.used_handles.add(handle)
                return Account(str(self.rng.randrange(14_000_000, 4_000_000_000)), full, handle)

    # -- times --------------------------------------------------------------------

    def after(self, moment: datetime, mean_hours: float) -> datetime:
        """A moment after `moment`: exponential delay, redrawn uniformly if past the window."""
        delay = timedelta(hours=self.rng.expovariate(1.0 / mean_hours))
        candidate = moment + max(delay, timedelta(seconds=40))
        if candidate >= WINDOW_END:
            span = (WINDOW_END - moment).total_seconds()
            candidate = moment + timedelta(seconds=self.rng.uniform(0.2, 0.95) * span)
        return candidate.replace(microsecond=0)

    def jitter(self, moment: datetime) -> datetime:
        """The same minute with random seconds, so planned times don't all end in :00."""
        return moment.replace(second=self.rng.randrange(60))

    def add(self, moment: datetime, line: dict[str, Any]) -> None:
        self.lines.append((moment, line))


# --------------------------------------------------------------------------- X API v2


@dataclass(frozen=True)
class Link:
    """A link in a tweet: t.co in the text, the real target in `entities.urls`."""

    expanded: str
    unwound: str | None = None
    title: str | None = None
    description: str | None = None


Part = str | Link


def display_of(url: str) -> str:
    """Twitter's display_url: no scheme, truncated with an ellipsis when long."""
    shown = re.sub(r"^https?://", "", url)
    return shown if len(shown) <= 20 else shown[:20] + "\u2026"


def iso_x(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Tweet:
    """A v2 tweet object plus the objects its stream message must carry in `includes`."""

    data: dict[str, Any]
    author: Account
    moment: datetime
    ref_tweets: list[Tweet] = field(default_factory=list)
    ref_users: list[Account] = field(default_factory=list)


# 2016 client names as the API reports them (Tweetbot really spells iOS with a Greek Omicron).
SOURCES = (
    "Twitter Web Client",
    "TweetDeck",
    "Twitter for iPhone",
    "Twitter for Android",
    "Tweetbot for i\u039fS",
)


def build_text(world: World, parts: Sequence[Part]) -> tuple[str, list[dict[str, Any]]]:
    """Join text parts; each Link becomes a t.co URL with a matching `entities.urls` item."""
    text = ""
    urls: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, str):
            text += part
            continue
        short = world.tco()
        entry: dict[str, Any] = {
            "start": len(text),
            "end": len(text) + len(short),
            "url": short,
            "expanded_url": part.expanded,
            "display_url": display_of(part.expanded),
        }
        if part.unwound is not None:
            # Enriched links carry the final URL after redirects and the page metadata.
            entry["status"] = 200
            if part.title:
                entry["title"] = part.title
            if part.description:
                entry["description"] = part.description
            entry["unwound_url"] = part.unwound
        urls.append(entry)
        text += short
    if len(text) > TWEET_LIMIT:
        raise ValueError(f"tweet longer than {TWEET_LIMIT} characters: {text!r}")
    return text, urls


def new_tweet(
    world: World,
    author: Account,
    moment: datetime,
    parts: Sequence[Part],
    *,
    mentions: Sequence[Account] = (),
) -> Tweet:
    """An original tweet (no references yet)."""
    tweet_id = world.snowflake(moment)
    text, urls = build_text(world, parts)
    entities: dict[str, Any] = {}
    if urls:
        entities["urls"] = urls
    spans = []
    for account in mentions:
        start = text.find("@" + account.username)
        if start < 0:
            raise ValueError(f"@{account.username} is not in {text!r}")
        spans.append(
            {
                "start": start,
                "end": start + 1 + len(account.username),
                "username": account.username,
                "id": account.id,
            }
        )
    if spans:
        entities["mentions"] = spans
    data: dict[str, Any] = {
        "id": tweet_id,
        "text": text,
        "author_id": author.id,
        "conversation_id": tweet_id,
        "created_at": iso_x(moment),
        "edit_history_tweet_ids": [tweet_id],
        "lang": "en",
        "possibly_sensitive": False,
        "reply_settings": "everyone",
        "source": world.rng.choice(SOURCES),
    }
    if entities:
        data["entities"] = entities
    return Tweet(data=data, author=author, moment=moment, ref_users=list(mentions))


def tweet(world: World, author: Account, moment: datetime, parts: Sequence[Part]) -> Tweet:
    """Post an original tweet and write its stream message."""
    made = new_tweet(world, author, world.jitter(moment), parts)
    emit(world, made)
    return made


def retweet(world: World, retweeter: Account, moment: datetime, original: Tweet) -> Tweet:
    """A retweet: `RT @user: text` cut to 140 chars; entities cut to what remains visible."""
    tweet_id = world.snowflake(moment)
    prefix = f"RT @{original.author.username}: "
    full = prefix + original.data["text"]
    text = full if len(full) <= TWEET_LIMIT else full[: TWEET_LIMIT - 1] + "\u2026"
    visible = len(text) if text == full else TWEET_LIMIT - 1
    entities: dict[str, Any] = {
        "mentions": [
            {
                "start": 3,
                "end": 4 + len(original.author.username),
                "username": original.author.username,
                "id": original.author.id,
            }
        ]
    }
    urls = []
    for entry in original.data.get("entities", {}).get("urls", []):
        start, end = entry["start"] + len(prefix), entry["end"] + len(prefix)
        if end <= visible:
            urls.append({**entry, "start": start, "end": end})
    if urls:
        entities["urls"] = urls
    # A truncated retweet must never show half an `arXiv:ID`: that would be a different ID.
    for match in ARXIV_REF.finditer(text):
        if match.end() >= visible and text != full:
            raise ValueError(f"retweet cut inside an arXiv reference: {text!r}")
    data = {
        "id": tweet_id,
        "text": text,
        "author_id": retweeter.id,
        "conversation_id": tweet_id,
        "created_at": iso_x(moment),
        "edit_history_tweet_ids": [tweet_id],
        "entities": entities,
        "lang": "en",
        "possibly_sensitive": False,
        "referenced_tweets": [{"type": "retweeted", "id": original.data["id"]}],
        "reply_settings": "everyone",
        "source": world.rng.choice(SOURCES),
    }
    made = Tweet(data, retweeter, moment, [original], [original.author])
    emit(world, made)
    return made


def quote(
    world: World, author: Account, moment: datetime, parts: Sequence[Part], quoted: Tweet
) -> Tweet:
    """A quote tweet: own text, then the quoted tweet's status URL (as in 2016 clients)."""
    status = f"https://twitter.com/{quoted.author.username}/status/{quoted.data['id']}"
    made = new_tweet(world, author, moment, [*parts, " ", Link(status)])
    made.data["referenced_tweets"] = [{"type": "quoted", "id": quoted.data["id"]}]
    made.ref_tweets.append(quoted)
    made.ref_users.append(quoted.author)
    emit(world, made)
    return made


def reply(
    world: World, author: Account, moment: datetime, parts: Sequence[Part], parent: Tweet
) -> Tweet:
    """A reply: starts with @parent_author, joins the parent's conversation."""
    made = new_tweet(
        world, author, moment, [f"@{parent.author.username} ", *parts], mentions=[parent.author]
    )
    made.data["conversation_id"] = parent.data["conversation_id"]
    made.data["in_reply_to_user_id"] = parent.author.id
    made.data["referenced_tweets"] = [{"type": "replied_to", "id": parent.data["id"]}]
    made.ref_tweets.append(parent)
    emit(world, made)
    return made


def emit(world: World, made: Tweet) -> None:
    """Write a filtered-stream message: data, includes (users, tweets), matching_rules."""
    users: dict[str, dict[str, str]] = {made.author.id: made.author.as_user()}
    for account in made.ref_users:
        users.setdefault(account.id, account.as_user())
    includes: dict[str, Any] = {"users": list(users.values())}
    if made.ref_tweets:
        includes["tweets"] = [dict(ref.data) for ref in made.ref_tweets]
    # The stream's url/keyword operators also match retweets and quotes of a matching tweet.
    texts = []
    for item in (made, *made.ref_tweets):
        texts.append(item.data["text"])
        for url in item.data.get("entities", {}).get("urls", []):
            texts += [url["expanded_url"], url.get("unwound_url", "")]
    rule = ARXIV_RULE if "arxiv" in " ".join(texts).lower() else FOLLOWS_RULE
    message = {"data": made.data, "includes": includes, "matching_rules": [dict(rule)]}
    world.add(made.moment, message)


# --------------------------------------------------------------------------- Bluesky


def iso_bsky(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def bsky_post(
    world: World,
    moment: datetime,
    text: str,
    *,
    links: Iterable[tuple[str, str]] = (),
    embed: tuple[str, str, str] | None = None,
    did: str | None = None,
) -> str:
    """A Jetstream v1 `app.bsky.feed.post` create commit; returns the post's AT URI.

    `links` are (shown text, uri) pairs: the shown text must occur in `text` and gets a
    link facet with UTF-8 byte offsets. `embed` is (uri, title, description) of a card.
    """
    moment = world.jitter(moment).replace(microsecond=world.rng.randrange(1_000_000))
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", "createdAt": iso_bsky(moment)}
    if embed is not None:
        uri, title, description = embed
        external: dict[str, Any] = {"description": description}
        if world.rng.random() < 0.5:
            external["thumb"] = {
                "$type": "blob",
                "ref": {"$link": "bafkrei" + world.b32(52)},
                "mimeType": "image/jpeg",
                "size": world.rng.randrange(8_000, 120_000),
            }
        external |= {"title": title, "uri": uri}
        record["embed"] = {"$type": "app.bsky.embed.external", "external": external}
    facets = []
    encoded = text.encode("utf-8")
    for shown, uri in links:
        start = encoded.find(shown.encode("utf-8"))
        if start < 0:
            raise ValueError(f"{shown!r} is not in {text!r}")
        facets.append(
            {
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}],
                "index": {"byteEnd": start + len(shown.encode("utf-8")), "byteStart": start},
            }
        )
    if facets:
        record["facets"] = facets
    record["langs"] = ["en"]
    record["text"] = text
    rkey = world.tid(moment)
    received = moment + timedelta(microseconds=world.rng.randrange(150_000, 900_000))
    event = {
        "did": did or "did:plc:" + world.b32(24),
        "time_us": int(received.timestamp()) * 1_000_000 + received.microsecond,
        "kind": "commit",
        "commit": {
            "rev": world.tid(received),
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": record,
            "cid": "bafyrei" + world.b32(52),
        },
    }
    world.add(moment, event)
    return f"at://{event['did']}/app.bsky.feed.post/{rkey}"


# --------------------------------------------------------------------------- the plan


def day_after(paper: dict[str, Any], hour: int, minute: int, days: int = 1) -> datetime:
    """`days` after the paper's submission date, at hour:minute UTC."""
    base = datetime.fromisoformat(paper["submitted"]).replace(tzinfo=UTC)
    return base + timedelta(days=days, hours=hour, minutes=minute)


def abs_card(paper: dict[str, Any]) -> tuple[str, str]:
    """Title and description of an arXiv abstract page, as link previews show them."""
    abstract = paper["abstract"]
    return f"[{paper['arxiv_id']}] {paper['title']}", abstract[:197].rstrip() + "..."


def arxiv_link(paper: dict[str, Any], url: str, *, unwound: bool = False) -> Link:
    """A Link to an arXiv URL, optionally enriched (unwound_url equal to the target)."""
    if not unwound:
        return Link(url)
    title, description = abs_card(paper)
    return Link(url, unwound=url, title=title, description=description)


def short_link(paper: dict[str, Any], short: str, target: str) -> Link:
    """A shortener link (bit.ly, dlvr.it, ...) whose unwound_url is the arXiv page."""
    title, description = abs_card(paper)
    return Link(short, unwound=target, title=title, description=description)


def retweet_many(
    world: World, original: Tweet, pool: Sequence[Account], n: int, mean_hours: float
) -> None:
    """`n` retweets of `original` by distinct accounts of `pool`."""
    for account in world.rng.sample(list(pool), n):
        retweet(world, account, world.after(original.moment, mean_hours), original)


def build(papers: dict[str, dict[str, Any]], rng: random.Random) -> World:
    """Write every post of the sample into a World (order fixed, so output is stable)."""
    world = World(rng)
    p = papers
    lm = p["1602.02410"]  # the 142-post paper

    # Accounts posting originals (fictional); some of them post several times.
    brainy = world.account("LM Research Digest", "lm_digest")
    nlp_news = world.account("NLP News Bot", "nlp_papers_bot")
    keiko = world.account("Keiko Ito", "keiko_ml")
    dario = world.account("Dario Rossi", "drossi_nlp")
    lena = world.account("Lena Fischer", "lenafischer")
    omar = world.account("Omar Okafor", "omar_okafor")
    maya = world.account("Maya Lindqvist", "mayalindqvist")
    vision = world.account("CV Paper Feed", "cv_arxiv_feed")
    theory = world.account("Algorithms Weekly", "algo_weekly")
    pool = [world.account() for _ in range(110)]

    # ---- 1602.02410: 142 posts ------------------------------------------------------
    o1 = tweet(
        world,
        brainy,
        day_after(lm, 2, 14),
        [
            "Exploring the Limits of Language Modeling: one big LSTM reaches 30.0 perplexity "
            "on One Billion Word (was 51.3) ",
            arxiv_link(lm, "https://arxiv.org/abs/1602.02410", unwound=True),
        ],
    )
    o2 = tweet(
        world,
        keiko,
        day_after(lm, 5, 41),
        [
            "Character CNN inputs + huge LSTMs: the ensemble reaches 23.7 perplexity on 1B Word, "
            "and the models are released! ",
            arxiv_link(lm, "http://arxiv.org/pdf/1602.02410v1.pdf"),
        ],
    )
    o3 = tweet(
        world,
        nlp_news,
        day_after(lm, 9, 3),
        [
            "New in cs.CL: Exploring the Limits of Language Modeling (Jozefowicz et al.) ",
            short_link(lm, "http://bit.ly/1Po3mYq", "https://arxiv.org/abs/1602.02410"),
        ],
    )
    o4 = tweet(
        world,
        dario,
        day_after(lm, 14, 27),
        ["If you read one LM paper this week: arXiv:1602.02410"],
    )
    # Two seed papers in one tweet (counts for both; so does its retweet).
    lv = p["1512.04906"]
    o5 = tweet(
        world,
        lena,
        day_after(lm, 18, 50),
        [
            "Softmax approximations for big vocabularies: ",
            arxiv_link(lv, "https://arxiv.org/abs/1512.04906"),
            " and how far they scale: ",
            arxiv_link(lm, "https://arxiv.org/abs/1602.02410"),
        ],
    )
    retweet_many(world, o1, pool, 72, 7.0)
    retweet_many(world, o2, pool, 38, 8.0)
    retweet_many(world, o3, pool, 14, 6.0)
    retweet_many(world, o4, pool, 6, 5.0)
    retweet(world, omar, world.after(o5.moment, 3.0), o5)
    quote(
        world,
        maya,
        world.after(o1.moment, 4.0),
        ["Perplexity 30 with a single model is wild."],
        o1,
    )
    rmn = p["1601.01272"]
    quote(
        world,
        omar,
        world.after(o2.moment, 6.0),
        [
            "Compare with Recurrent Memory Networks ",
            arxiv_link(rmn, "https://arxiv.org/abs/1601.01272"),
        ],
        o2,
    )
    reply(
        world,
        lena,
        world.after(o1.moment, 2.0),
        ["direct PDF link: ", arxiv_link(lm, "https://arxiv.org/pdf/1602.02410")],
        o1,
    )
    lm_title, lm_desc = abs_card(lm)
    bsky_post(
        world,
        day_after(lm, 11, 5),
        "Google Brain's 1B Word paper: 30.0 single model, 23.7 ensemble. arxiv.org/abs/1602.02410",
        links=[("arxiv.org/abs/1602.02410", "https://arxiv.org/abs/1602.02410")],
        embed=("https://arxiv.org/abs/1602.02410", lm_title, lm_desc),
    )
    bsky_post(
        world,
        day_after(lm, 20, 31),
        "Exploring the Limits of Language Modeling \u2014 big LSTMs, char-CNN inputs \U0001f4c8",
        embed=("https://arxiv.org/pdf/1602.02410", lm_title, lm_desc),
    )
    bsky_post(
        world,
        day_after(lm, 27, 12),
        "arXiv:1602.02410 is a great read on scaling LSTM language models",
    )

    # ---- the other 19 papers ----------------------------------------------------------
    sttn = p["1602.02218"]
    bsky_post(
        world,
        day_after(sttn, 13, 44),
        "Strongly-typed RNNs: physics-style type constraints for recurrent nets "
        "arxiv.org/abs/1602.02218",
        links=[("arxiv.org/abs/1602.02218", "https://arxiv.org/abs/1602.02218")],
        embed=("https://arxiv.org/abs/1602.02218", *abs_card(sttn)),
    )

    swivel = p["1602.02215"]
    sw = tweet(
        world,
        nlp_news,
        day_after(swivel, 16, 2),
        [
            "Swivel: Improving Embeddings by Noticing What's Missing ",
            arxiv_link(swivel, "https://arxiv.org/pdf/1602.02215"),
        ],
    )
    retweet(world, keiko, world.after(sw.moment, 3.0), sw)

    sparse = p["1602.02068"]
    sp = tweet(
        world,
        dario,
        day_after(sparse, 10, 18),
        [
            "From Softmax to Sparsemax: sparse attention with a closed-form Jacobian ",
            Link(
                "http://arxiv.org/abs/1602.02068",
                unwound="https://arxiv.org/abs/1602.02068",
                title=abs_card(sparse)[0],
                description=abs_card(sparse)[1],
            ),
        ],
    )
    quote(world, lena, world.after(sp.moment, 9.0), ["Neat alternative to softmax."], sp)

    tweet(
        world,
        brainy,
        day_after(p["1602.01783"], 8, 36),
        [
            "A3C: asynchronous actor-critic beats DQN on Atari using CPU threads ",
            arxiv_link(p["1602.01783"], "http://arxiv.org/pdf/1602.01783v1.pdf"),
        ],
    )

    tweet(
        world,
        maya,
        day_after(p["1602.01528"], 19, 9),
        ["EIE runs compressed nets straight from SRAM, 13x faster than GPU. arXiv:1602.01528"],
    )

    pixel = p["1601.06759"]
    px = tweet(
        world,
        vision,
        day_after(pixel, 6, 55),
        [
            "Pixel Recurrent Neural Networks (van den Oord et al.) ",
            arxiv_link(pixel, "https://arxiv.org/abs/1601.06759"),
        ],
    )
    retweet(world, maya, world.after(px.moment, 10.0), px)
    bsky_post(
        world,
        day_after(pixel, 31, 40),
        "PixelRNN samples look great",
        embed=("http://arxiv.org/abs/1601.06759", *abs_card(pixel)),
    )

    tweet(
        world,
        keiko,
        day_after(p["1601.06071"], 12, 12),
        [
            "Bitwise Neural Networks: binary weights and activations, XNOR at test time ",
            arxiv_link(p["1601.06071"], "https://arxiv.org/abs/1601.06071"),
        ],
    )

    mrf = p["1601.04589"]  # 20 posts
    ma = tweet(
        world,
        vision,
        day_after(mrf, 4, 30),
        [
            "Combining Markov Random Fields and Convolutional Neural Networks for image "
            "synthesis, impressive results ",
            arxiv_link(mrf, "https://arxiv.org/abs/1601.04589", unwound=True),
        ],
    )
    mb = tweet(
        world,
        omar,
        day_after(mrf, 30, 5),
        [
            "CNNMRF style transfer keeps local structure way better ",
            arxiv_link(mrf, "http://arxiv.org/pdf/1601.04589v1.pdf"),
        ],
    )
    retweet_many(world, ma, pool, 12, 20.0)
    retweet_many(world, mb, pool, 4, 12.0)
    quote(world, keiko, world.after(ma.moment, 15.0), ["Those faces!"], ma)
    bsky_post(
        world,
        day_after(mrf, 50, 22),
        "MRF priors + CNN features for texture/style transfer: arxiv.org/pdf/1601.04589v1.pdf",
        links=[("arxiv.org/pdf/1601.04589v1.pdf", "http://arxiv.org/pdf/1601.04589v1.pdf")],
    )

    # Two seed papers in one tweet (both counted once).
    tweet(
        world,
        theory,
        day_after(p["1601.02712"], 9, 0),
        [
            "Theory reading: slime mold = IRLS ",
            arxiv_link(p["1601.02712"], "https://arxiv.org/abs/1601.02712"),
            " and quasipoly graph iso ",
            arxiv_link(p["1512.03547"], "https://arxiv.org/abs/1512.03547"),
        ],
    )

    # 1601.01272: the quote above + one tweet + one Bluesky post.
    tweet(
        world,
        dario,
        day_after(rmn, 7, 48),
        [
            "Recurrent Memory Networks for Language Modeling ",
            arxiv_link(rmn, "https://arxiv.org/abs/1601.01272"),
        ],
    )
    bsky_post(
        world,
        day_after(rmn, 22, 16),
        "Memory blocks on top of LSTMs, with attention you can inspect: arxiv.org/abs/1601.01272",
        links=[("arxiv.org/abs/1601.01272", "https://arxiv.org/abs/1601.01272")],
    )

    drop = p["1512.05287"]
    dr = tweet(
        world,
        lena,
        day_after(drop, 15, 25),
        [
            "Variational dropout for RNNs, same mask at every step ",
            arxiv_link(drop, "https://www.arxiv.org/abs/1512.05287v2"),
        ],
    )
    retweet(world, brainy, world.after(dr.moment, 30.0), dr)

    depth = p["1512.03965"]
    dp = tweet(
        world,
        theory,
        day_after(depth, 3, 58),
        [
            "The Power of Depth for Feedforward Neural Networks ",
            arxiv_link(depth, "https://arxiv.org/pdf/1512.03965"),
        ],
    )
    # A quote whose own link is the quoted paper: one paper, counted once.
    quote(
        world,
        maya,
        world.after(dp.moment, 20.0),
        ["3 layers vs 2: ", arxiv_link(depth, "https://arxiv.org/abs/1512.03965")],
        dp,
    )

    loss = p["1511.08861"]
    lo = tweet(
        world,
        vision,
        day_after(loss, 11, 11),
        [
            "Loss Functions for Neural Networks for Image Processing: L2 is not the loss you "
            "want for image restoration ",
            arxiv_link(loss, "https://arxiv.org/abs/1511.08861"),
        ],
    )
    retweet(world, omar, world.after(lo.moment, 12.0), lo)  # cut before the link

    tweet(
        world,
        nlp_news,
        day_after(p["1511.08400"], 17, 33),
        [
            "Regularizing RNNs by Stabilizing Activations ",
            short_link(p["1511.08400"], "http://dlvr.it/Cszb8L", "http://arxiv.org/abs/1511.08400"),
        ],
    )

    nlu = p["1511.07916"]  # 8 posts
    nl = tweet(
        world,
        keiko,
        day_after(nlu, 20, 0),
        [
            "Kyunghyun Cho's lecture notes on NLU with distributed representations ",
            arxiv_link(nlu, "https://www.arxiv.org/abs/1511.07916v2"),
        ],
    )
    retweet_many(world, nl, pool, 5, 30.0)
    reply(
        world,
        dario,
        world.after(nl.moment, 24.0),
        ["thanks! also as PDF ", arxiv_link(nlu, "http://arxiv.org/pdf/1511.07916v1.pdf")],
        nl,
    )
    bsky_post(
        world,
        day_after(nlu, 40, 45),
        "Still the best intro to neural NLP I know: www.arxiv.org/abs/1511.07916v2",
        links=[("www.arxiv.org/abs/1511.07916v2", "https://www.arxiv.org/abs/1511.07916v2")],
    )

    dil = p["1511.07122"]
    dl = tweet(
        world,
        vision,
        day_after(dil, 8, 8),
        [
            "Dilated convolutions for dense prediction ",
            arxiv_link(dil, "https://arxiv.org/abs/1511.07122"),
        ],
    )
    retweet(world, keiko, world.after(dl.moment, 16.0), dl)

    tweet(
        world,
        nlp_news,
        day_after(p["1511.06909"], 21, 37),
        ["BlackOut: Speeding up RNN language models with very large vocabularies arXiv:1511.06909"],
    )

    # ---- posts that must count nothing --------------------------------------------------
    day = datetime(2016, 2, 2, tzinfo=UTC)
    gh = tweet(
        world,
        omar,
        day + timedelta(hours=9, minutes=3),
        [
            "Code for our char-level LSTM experiments is up ",
            Link("https://github.com/lm-lab/char-lstm-experiments"),
        ],
    )
    retweet(world, maya, world.after(gh.moment, 5.0), gh)
    reply(world, lena, world.after(gh.moment, 2.0), ["nice! any pretrained weights?"], gh)
    tweet(
        world,
        vision,
        day + timedelta(days=1, hours=14),
        [
            "Deep learning for cell segmentation, new preprint ",
            Link(
                "http://dx.doi.org/10.1101/038612",
                unwound="http://biorxiv.org/content/early/2016/02/01/038612",
            ),
        ],
    )
    tweet(
        world,
        dario,
        day + timedelta(days=3, hours=6, minutes=20),
        [
            "bioRxiv is growing fast ",
            Link("http://biorxiv.org/content/early/2016/02/04/038794"),
        ],
    )
    tweet(
        world,
        nlp_news,
        day + timedelta(days=4, hours=7),
        ["Today's cs.CL listing ", Link("https://arxiv.org/list/cs.CL/recent")],
    )
    tweet(
        world,
        keiko,
        day + timedelta(days=5, hours=22, minutes=10),
        ["Reading group tomorrow: bring your favourite arXiv paper from this week!"],
    )
    tweet(
        world,
        brainy,
        datetime(2016, 1, 28, 18, 2, tzinfo=UTC),
        [
            "Mastering the game of Go with deep neural networks and tree search ",
            Link("http://www.nature.com/nature/journal/v529/n7587/full/nature16961.html"),
        ],
    )
    bsky_post(
        world,
        day + timedelta(days=6, hours=3, minutes=33),
        "Reimplementation of the 1B Word LSTM baseline: github.com/lm-lab/big-lstm",
        links=[("github.com/lm-lab/big-lstm", "https://github.com/lm-lab/big-lstm")],
        embed=(
            "https://github.com/lm-lab/big-lstm",
            "lm-lab/big-lstm",
            "Large LSTM language model baseline",
        ),
    )
    return world


# --------------------------------------------------------------------------- output


def references(line: dict[str, Any]) -> tuple[str, set[str]]:
    """(post id, distinct arXiv ids) of one line, under the counting rule above."""
    if "data" in line:
        post = line["data"]
        included = {t["id"]: t for t in line.get("includes", {}).get("tweets", [])}
        sources = [post]
        for ref in post.get("referenced_tweets", []):
            if ref["type"] in ("retweeted", "quoted") and ref["id"] in included:
                sources.append(included[ref["id"]])
        texts = []
        for source in sources:
            texts.append(source["text"])
            for url in source.get("entities", {}).get("urls", []):
                texts += [url["expanded_url"], url.get("unwound_url", "")]
        return post["id"], {m.group(1) for t in texts for m in ARXIV_REF.finditer(t)}
    commit = line["commit"]
    record = commit["record"]
    texts = [record["text"]]
    for facet in record.get("facets", []):
        texts += [f["uri"] for f in facet["features"] if "uri" in f]
    texts.append(record.get("embed", {}).get("external", {}).get("uri", ""))
    post_id = f"at://{line['did']}/{commit['collection']}/{commit['rkey']}"
    return post_id, {m.group(1) for t in texts for m in ARXIV_REF.finditer(t)}


def check(world: World, papers: dict[str, dict[str, Any]]) -> None:
    """Fail loudly if the sample does not reproduce the page's counts."""
    counts: Counter[str] = Counter()
    ids: set[str] = set()
    for _, line in world.lines:
        post_id, arxiv_ids = references(line)
        if post_id in ids:
            raise SystemExit(f"duplicate post id {post_id}")
        ids.add(post_id)
        counts.update(arxiv_ids)
    expected = {k: v["captured_tweets_and_retweets"] for k, v in papers.items()}
    if dict(counts) != expected:
        diff = {k: (counts.get(k, 0), expected.get(k, 0)) for k in set(counts) | set(expected)}
        raise SystemExit(
            f"counts differ (got, want): { {k: v for k, v in diff.items() if v[0] != v[1]} }"
        )
    for moment, _ in world.lines:
        if not WINDOW_START <= moment <= WINDOW_END:
            raise SystemExit(f"post time {moment} outside the window")


def paper_record(paper: dict[str, Any]) -> dict[str, Any]:
    """Metadata of one paper as shipped in seed_papers.json."""
    return {
        "arxiv_id": paper["arxiv_id"],
        "title": paper["title"],
        "authors": list(paper["authors"]),
        "abstract": paper["abstract"],
        "published": f"{paper['submitted']}T00:00:00Z",
        "primary_category": paper["primary_category"],
        # The seed page only names the primary category.
        "categories": [paper["primary_category"]],
        "seed_posts": paper["captured_tweets_and_retweets"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED, help="seed papers.json")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    try:
        seed = json.loads(args.seed.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cannot read the seed file {args.seed}: {exc}", file=sys.stderr)
        return 2
    papers = {paper["arxiv_id"]: paper for paper in seed}

    world = build(papers, random.Random(RNG_SEED))
    check(world, papers)
    # Stable order: by time, then by generation order (sorted() is stable).
    ordered = [line for _, line in sorted(world.lines, key=lambda item: item[0])]

    args.out.mkdir(parents=True, exist_ok=True)
    papers_path = args.out / "seed_papers.json"
    papers_path.write_text(
        json.dumps([paper_record(p) for p in seed], indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    posts_path = args.out / "seed_posts.jsonl"
    with posts_path.open("w", encoding="utf-8", newline="\n") as handle:
        for line in ordered:
            # X payloads as the API sends them (ASCII-escaped); Jetstream sends raw UTF-8.
            handle.write(
                json.dumps(line, separators=(",", ":"), ensure_ascii="data" in line) + "\n"
            )
    print(f"wrote {papers_path} ({len(seed)} papers) and {posts_path} ({len(ordered)} posts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
