"""Typed settings of the feeds: where the server is published and which Bluesky feeds it
generates (`TRENDING_FEEDS_*` and `TRENDING_FEEDS`, a JSON list)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trending_arxiv.core.skyfeed import feed_uri, is_did, service_did
from trending_arxiv.core.vocabulary import MAX_USER_NAME, Sort, Source, Window
from trending_arxiv.search.skyfeed import FeedView
from trending_arxiv.settings import CommonSettings


class FeedDefinition(BaseModel):
    """One Bluesky feed: its record key (`name`), how it shows in the app, its ranking."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Bluesky shows a feed at /profile/<did>/feed/<name>; the app asks for at most 15 chars.
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,14}$")
    display_name: str = Field(min_length=1, max_length=24)
    description: str = Field(default="", max_length=300)
    window: Window = "24h"
    sort: Sort = "posts"
    category: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9.\-]{0,63}$")
    source: Source | None = None
    user: str | None = Field(default=None, min_length=1, max_length=MAX_USER_NAME)

    @property
    def view(self) -> FeedView:
        return FeedView(self.window, self.sort, self.category, self.source, self.user)


DEFAULT_FEEDS = [
    FeedDefinition(
        name="trending-24h",
        display_name="Trending arXiv: 24h",
        description="arXiv papers most posted about on X, Bluesky and Mastodon in the last "
        "24 hours, one Bluesky post per paper (the most reposted, else the first).",
    ),
    FeedDefinition(
        name="trending-7d",
        display_name="Trending arXiv: 7 days",
        description="arXiv papers most posted about in the last 7 days, one Bluesky post "
        "per paper.",
        window="7d",
    ),
    FeedDefinition(
        name="trending-cs-cl",
        display_name="Trending arXiv: cs.CL",
        description="Computation and Language (cs.CL) papers most posted about in the last "
        "7 days, one Bluesky post per paper.",
        window="7d",
        category="cs.CL",
    ),
]


class FeedSettings(CommonSettings):
    """Feeds of one server: Atom/RSS links and the Bluesky feed generator."""

    feeds_hostname: str = Field(
        default="localhost",
        description="Public host name of this server; the generator is did:web:<host>.",
    )
    feeds_service_url: str | None = Field(
        default=None, description="Where Bluesky reaches the generator (https://<host>)."
    )
    feeds_publisher_did: str | None = Field(
        default=None,
        description="DID of the Bluesky account that publishes the feed records "
        "(default: the generator's own did:web).",
    )
    feeds_public_url: str | None = Field(
        default=None,
        description="Base URL of the links in Atom/RSS feeds (default: the request's).",
    )
    feeds: list[FeedDefinition] = Field(default_factory=lambda: list(DEFAULT_FEEDS))

    @field_validator("feeds_hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        service_did(value)  # raises with a clear message
        return value

    @field_validator("feeds_publisher_did")
    @classmethod
    def _publisher(cls, value: str | None) -> str | None:
        if value is not None and not is_did(value):
            raise ValueError(f"not a DID: {value!r} (e.g. did:plc:abc123...)")
        return value

    @field_validator("feeds_service_url", "feeds_public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _unique_names(self) -> FeedSettings:
        names = [feed.name for feed in self.feeds]
        if len(set(names)) != len(names):
            raise ValueError(f"feed names must be unique, got {names}")
        return self

    @property
    def service_did(self) -> str:
        return service_did(self.feeds_hostname)

    @property
    def service_endpoint(self) -> str:
        return self.feeds_service_url or f"https://{self.feeds_hostname}"

    @property
    def publisher_did(self) -> str:
        return self.feeds_publisher_did or self.service_did

    def feed_uri(self, feed: FeedDefinition) -> str:
        return feed_uri(self.publisher_did, feed.name)

    def feed_named(self, name: str) -> FeedDefinition | None:
        return next((feed for feed in self.feeds if feed.name == name), None)

    @classmethod
    def from_common(cls, settings: CommonSettings) -> FeedSettings:
        """These settings for the same servers and namespace; the feed fields from the
        environment."""
        if isinstance(settings, FeedSettings):
            return settings
        common = {name: getattr(settings, name) for name in CommonSettings.model_fields}
        return cls(**common)
