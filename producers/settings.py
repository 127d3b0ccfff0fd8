"""Settings of the producers (environment variables prefixed `TRENDING_`).

Secrets (`SecretStr`) come from the environment or from a file named by a `*_FILE`
variable (Docker/Kubernetes secrets); they never appear in reprs, logs or errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from trending_arxiv.core.envelope import MAX_ENVELOPE_BYTES, MAX_ENVELOPE_POSTS
from trending_arxiv.settings import CommonSettings

# Hosts X matches with `url:` rules. `url:` matches on tokenised URLs, so "arxiv.org" also
# covers export.arxiv.org and ar5iv.labs.arxiv.org; the rest are mirrors/readers.
ARXIV_URL_HOSTS: tuple[str, ...] = (
    "arxiv.org",
    "ar5iv.org",
    "alphaxiv.org",
    "arxiv-vanity.com",
    "huggingface.co/papers",
)

JETSTREAM_PUBLIC_URLS: tuple[str, ...] = (
    "wss://jetstream1.us-east.bsky.network/subscribe",
    "wss://jetstream2.us-east.bsky.network/subscribe",
    "wss://jetstream1.us-west.bsky.network/subscribe",
    "wss://jetstream2.us-west.bsky.network/subscribe",
)


def _split_list(value: object) -> object:
    """Accept a JSON list or a comma-separated string for list settings."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _read_secret(value: SecretStr | None, path: Path | None, name: str) -> SecretStr | None:
    """The secret itself, or the stripped contents of its file; the file wins if both."""
    if path is None:
        return value
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        # Name the file, never its contents.
        raise ValueError(f"cannot read {name} file {str(path)!r}: {exc.strerror}") from None
    if not text:
        raise ValueError(f"{name} file {str(path)!r} is empty")
    return SecretStr(text)


class ProducerSettings(CommonSettings):
    """What every producer shares."""

    checkpoint_dir: Path = Field(
        default=Path(".stack/checkpoints"),
        description="Where producers keep their resume positions (one file per producer).",
    )
    kafka_compression: Literal["gzip", "zstd", "none"] = "zstd"
    kafka_linger_ms: int = Field(default=20, ge=0)
    kafka_max_pending: int = Field(
        default=10_000,
        ge=1,
        description="Records sent but not yet acknowledged before `send` blocks (back-pressure).",
    )
    kafka_envelopes: bool = Field(
        default=True,
        description=(
            "Write posts.raw in envelopes (many posts per record, header "
            "trending-envelope: ndjson); false: one post per record."
        ),
    )
    kafka_envelope_linger_ms: int = Field(
        default=50,
        ge=0,
        le=1000,
        description="Longest an envelope's first post waits for more posts of its partition.",
    )
    kafka_envelope_max_posts: int = Field(default=MAX_ENVELOPE_POSTS, ge=1, le=10_000)
    kafka_envelope_max_bytes: int = Field(
        default=MAX_ENVELOPE_BYTES, ge=1024, le=MAX_ENVELOPE_BYTES
    )
    metrics_log_seconds: float = Field(default=30.0, gt=0)

    def checkpoint_path(self, producer: str) -> Path:
        return self.checkpoint_dir / f"{self.namespace}.{producer}.json"


class XProducerSettings(ProducerSettings):
    """X API v2: filtered stream, recent-search polling or a handle's follow list."""

    x_bearer_token: SecretStr | None = None
    x_bearer_token_file: Path | None = None
    x_api_base_url: str = Field(
        default="https://api.x.com",
        description="API host; tests point it at a local server.",
    )
    x_mode: Literal["stream", "search", "follows"] = "stream"
    x_query: str | None = Field(
        default=None,
        description="Search query / stream rule; default: the arXiv URL hosts joined by OR.",
    )
    x_follow_handle: str | None = None
    x_follows_transport: Literal["stream", "search"] = "stream"
    x_follows_dir: Path = Path(".stack/follows")
    x_poll_interval_seconds: float = Field(default=60.0, gt=0)
    x_max_results: int = Field(default=100, ge=10, le=100)
    x_rule_max_length: int = Field(
        default=512, ge=64, description="512 on Basic, 1024 on Pro (X's rule length limit)."
    )
    x_max_rules: int = Field(default=25, ge=1)
    x_backfill_minutes: int = Field(
        default=0, ge=0, le=5, description="Stream recovery after a disconnect (Pro/Enterprise)."
    )
    x_max_rate_limit_wait_seconds: float = Field(default=900.0, gt=0)

    @field_validator("x_api_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("x_follow_handle")
    @classmethod
    def _strip_at(cls, value: str | None) -> str | None:
        return value.lstrip("@") if value else value

    def bearer_token(self) -> SecretStr:
        """The bearer token, or a clear error naming the variables to set."""
        token = _read_secret(self.x_bearer_token, self.x_bearer_token_file, "X bearer token")
        if token is None or not token.get_secret_value():
            raise ValueError(
                "no X bearer token: set TRENDING_X_BEARER_TOKEN or TRENDING_X_BEARER_TOKEN_FILE"
            )
        return token


class BlueskyProducerSettings(ProducerSettings):
    """Bluesky Jetstream websocket."""

    bluesky_jetstream_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(JETSTREAM_PUBLIC_URLS),
        description="Jetstream subscribe URLs, tried in order (fail-over).",
    )
    bluesky_collections: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["app.bsky.feed.post", "app.bsky.feed.repost"]
    )
    bluesky_cursor_file: Path | None = Field(
        default=None, description="Default: <checkpoint_dir>/<namespace>.bluesky.json"
    )
    bluesky_compress: bool = Field(
        default=False,
        description="Ask for zstd frames; needs bluesky_zstd_dictionary (Jetstream's dictionary).",
    )
    bluesky_zstd_dictionary: Path | None = None
    bluesky_rewind_seconds: float = Field(default=5.0, ge=0)
    bluesky_reconnect_max_seconds: float = Field(default=30.0, gt=0)
    bluesky_api_base_url: str = Field(
        default="https://public.api.bsky.app",
        description="XRPC host for handles and follow lists (public AppView; tests: local).",
    )

    @field_validator("bluesky_jetstream_urls", "bluesky_collections", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("bluesky_jetstream_urls")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one Jetstream URL is needed")
        return value

    @field_validator("bluesky_api_base_url")
    @classmethod
    def _strip_api_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def cursor_path(self) -> Path:
        return self.bluesky_cursor_file or self.checkpoint_path("bluesky")


class MastodonProducerSettings(ProducerSettings):
    """A Mastodon instance's public or hashtag timeline (streaming, or polling)."""

    mastodon_base_url: str = "https://mastodon.social"
    mastodon_access_token: SecretStr | None = None
    mastodon_access_token_file: Path | None = None
    mastodon_stream: Literal["public", "hashtag"] = "hashtag"
    mastodon_hashtag: str = "arxiv"
    mastodon_mode: Literal["stream", "poll"] = "stream"
    mastodon_checkpoint_file: Path | None = None
    mastodon_poll_interval_seconds: float = Field(default=30.0, gt=0)
    mastodon_reconnect_max_seconds: float = Field(default=60.0, gt=0)

    @field_validator("mastodon_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("mastodon_hashtag")
    @classmethod
    def _strip_hash(cls, value: str) -> str:
        return value.lstrip("#")

    def access_token(self) -> SecretStr | None:
        return _read_secret(
            self.mastodon_access_token, self.mastodon_access_token_file, "Mastodon access token"
        )

    def checkpoint_file(self) -> Path:
        return self.mastodon_checkpoint_file or self.checkpoint_path("mastodon")
