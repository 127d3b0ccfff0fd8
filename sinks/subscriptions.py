"""Subscriptions: the YAML/JSON format, validation and storage in Elasticsearch.

Stored in `<ns>-subscriptions` under `_id` = the subscription's name (adding one again
replaces it). Addresses and webhook URLs are `SecretStr`: they are stored (they must
be, to deliver) but never logged and shown only redacted (`redacted`).

File format (`trending-arxiv subscriptions add --file subs.yaml`)::

    subscriptions:
      - name: nlp-digest
        query: {categories: [cs.CL], keywords: ["language model"]}
        delivery: {type: email, to: me@example.org, digest: daily, top: 10}
      - name: hot-graphs
        query: {categories: ["cs.DS", "math.CO"], source: bluesky}
        trigger: {kind: accounts, min_accounts: 5, window: 1h}
        delivery: {type: webhook, url_env: GRAPHS_HOOK}
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from elasticsearch import Elasticsearch, NotFoundError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from sinks.alert_targets import secret_url
from trending_arxiv.core.ids import canonicalize
from trending_arxiv.core.models import to_utc_iso
from trending_arxiv.core.subscriptions import PaperQuery, Trigger, check_name
from trending_arxiv.settings import CommonSettings

MAX_SUBSCRIPTIONS = 10_000

SUBSCRIPTIONS_MAPPINGS: dict[str, Any] = {
    "dynamic": "false",
    "properties": {
        "name": {"type": "keyword"},
        "updated_at": {"type": "date"},
        "delivery": {"properties": {"type": {"type": "keyword"}, "digest": {"type": "keyword"}}},
    },
}


def subscriptions_index(settings: CommonSettings) -> str:
    return f"{settings.namespace}-subscriptions"


class QueryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: list[str] = Field(default_factory=list, max_length=100)
    keywords: list[str] = Field(default_factory=list, max_length=100)
    authors: list[str] = Field(default_factory=list, max_length=100)
    arxiv_ids: list[str] = Field(default_factory=list, max_length=1000)
    follows: str | None = Field(default=None, max_length=256, description="A user's list.")
    source: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{0,31}$")

    @model_validator(mode="after")
    def _clean(self) -> QueryConfig:
        ids = []
        for raw in self.arxiv_ids:
            canonical = canonicalize(raw.strip())
            if canonical is None:
                raise ValueError(f"not an arXiv identifier: {raw!r}")
            ids.append(canonical)
        self.arxiv_ids = ids
        if any(not k.strip() for k in self.keywords):
            raise ValueError("keywords must not be empty")
        return self

    def core(self) -> PaperQuery:
        return PaperQuery(
            categories=tuple(self.categories),
            keywords=tuple(self.keywords),
            authors=tuple(self.authors),
            arxiv_ids=tuple(self.arxiv_ids),
            follows=self.follows,
            source=self.source,
        )


class TriggerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["accounts", "velocity", "top"]
    min_accounts: int = Field(default=10, ge=1)
    window: Literal["1h", "24h", "7d", "30d"] = "1h"
    velocity_ratio: float = Field(default=5.0, gt=0)
    velocity_min_posts_1h: int = Field(default=5, ge=0)
    top: int = Field(default=10, ge=1, le=1000)

    def core(self) -> Trigger:
        return Trigger(**self.model_dump())


class DeliveryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook", "slack", "email", "stdout"]
    url: SecretStr | None = None
    url_env: str | None = Field(default=None, description="Read the URL from this variable.")
    to: SecretStr | None = Field(default=None, description="The subscriber's e-mail address.")
    digest: Literal["hourly", "daily"] | None = None
    top: int = Field(default=10, ge=1, le=100, description="Papers in a digest.")

    @model_validator(mode="after")
    def _complete(self) -> DeliveryConfig:
        if self.type in ("webhook", "slack") and self.url is None and self.url_env is None:
            raise ValueError(f"a {self.type} delivery needs url or url_env")
        if self.type == "email":
            address = self.to.get_secret_value() if self.to is not None else ""
            if "@" not in address or any(c in address for c in "\r\n <>,"):
                raise ValueError("an email delivery needs one address in 'to'")
        return self

    def resolved_url(self, name: str) -> SecretStr:
        return secret_url(self.url, self.url_env, f"subscription {name!r}")


class SubscriptionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    query: QueryConfig = Field(default_factory=QueryConfig)
    trigger: TriggerConfig | None = None
    delivery: DeliveryConfig

    @model_validator(mode="after")
    def _one_kind(self) -> SubscriptionConfig:
        check_name(self.name)
        if (self.trigger is None) == (self.delivery.digest is None):
            raise ValueError(
                f"subscription {self.name!r} needs either a trigger or a digest delivery "
                "(delivery.digest: hourly|daily), not both"
            )
        return self

    def stored(self) -> dict[str, Any]:
        """The Elasticsearch document (secrets in clear: the deliverer needs them)."""
        doc = self.model_dump(mode="json")
        for key in ("url", "to"):
            secret = getattr(self.delivery, key)
            doc["delivery"][key] = secret.get_secret_value() if secret is not None else None
        doc["updated_at"] = to_utc_iso(datetime.now(UTC))
        return doc

    def redacted(self) -> dict[str, Any]:
        """What `list` shows: addresses and URLs masked."""
        doc = self.model_dump(mode="json")
        doc["delivery"]["to"] = _mask_address(self.delivery.to)
        doc["delivery"]["url"] = "**********" if self.delivery.url is not None else None
        return doc


def _mask_address(address: SecretStr | None) -> str | None:
    if address is None:
        return None
    domain = address.get_secret_value().rpartition("@")[2]
    return f"***@{domain}"


class SubscriptionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscriptions: list[SubscriptionConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> SubscriptionsFile:
        names = [s.name for s in self.subscriptions]
        if len(set(names)) != len(names):
            raise ValueError("subscription names must be unique")
        return self


def _reason(error: ValidationError) -> str:
    # Pydantic's message quotes the input; an address must not reach a log or a terminal.
    return "\n".join(
        f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
        for e in error.errors(include_input=False)
    )


def parse_subscription(data: Any) -> SubscriptionConfig:
    try:
        return SubscriptionConfig.model_validate(data)
    except ValidationError as error:
        raise ValueError(f"invalid subscription:\n{_reason(error)}") from None


def load_subscriptions_file(path: Path) -> list[SubscriptionConfig]:
    """Read and validate a YAML/JSON subscriptions file; ValueError with the reason."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"cannot read the subscriptions file {path}: {error}") from error
    except yaml.YAMLError as error:
        raise ValueError(f"the subscriptions file {path} is not valid YAML/JSON") from error
    try:
        return SubscriptionsFile.model_validate(data).subscriptions
    except ValidationError as error:
        raise ValueError(f"the subscriptions file {path} is invalid:\n{_reason(error)}") from None


def ensure_subscriptions_index(es: Elasticsearch, settings: CommonSettings) -> None:
    index = subscriptions_index(settings)
    es.indices.put_index_template(
        name=index,
        index_patterns=[index],
        template={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": SUBSCRIPTIONS_MAPPINGS,
        },
        priority=100,
    )
    if not es.indices.exists(index=index):
        es.options(ignore_status=400).indices.create(index=index)  # 400: created meanwhile


def store_subscription(
    es: Elasticsearch, settings: CommonSettings, subscription: SubscriptionConfig
) -> None:
    ensure_subscriptions_index(es, settings)
    es.index(
        index=subscriptions_index(settings),
        id=subscription.name,
        document=subscription.stored(),
        refresh=True,
    )


def remove_subscription(es: Elasticsearch, settings: CommonSettings, name: str) -> bool:
    """Delete a subscription; False if there was none of that name."""
    check_name(name)
    try:
        es.delete(index=subscriptions_index(settings), id=name, refresh=True)
    except NotFoundError:
        return False
    return True


def list_subscriptions(es: Elasticsearch, settings: CommonSettings) -> list[SubscriptionConfig]:
    """Every stored subscription, by name (a stored one that no longer validates is skipped
    with its name in the error, not fatal: see `load_errors`)."""
    subscriptions, _ = load_stored(es, settings)
    return subscriptions


def load_stored(
    es: Elasticsearch, settings: CommonSettings
) -> tuple[list[SubscriptionConfig], list[str]]:
    try:
        response = es.search(
            index=subscriptions_index(settings),
            query={"match_all": {}},
            sort=[{"name": {"order": "asc"}}],
            size=MAX_SUBSCRIPTIONS,
        )
    except NotFoundError:
        return [], []
    found, errors = [], []
    for hit in response["hits"]["hits"]:
        source = {k: v for k, v in hit["_source"].items() if k != "updated_at"}
        try:
            found.append(SubscriptionConfig.model_validate(source))
        except ValidationError as error:
            errors.append(f"stored subscription {hit['_id']!r} is invalid:\n{_reason(error)}")
    return found, errors
