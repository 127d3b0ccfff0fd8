"""X API v2 building blocks: stream rules, X's back-off, tweepy clients on a configurable host.

tweepy 4.17's `Client`/`StreamingClient` hard-code the host and log request headers (the
bearer token) at DEBUG, so `_ConfigurableHost.request` replaces their `request`: same
status-to-exception mapping, a configurable base URL, no header logging.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
import tweepy

from producers.settings import ARXIV_URL_HOSTS
from trending_arxiv.core.models import parse_utc

log = logging.getLogger(__name__)

# Fields and expansions that carry URLs of retweets, quotes and long posts.
TWEET_FIELDS = (
    "attachments",
    "author_id",
    "conversation_id",
    "created_at",
    "entities",
    "lang",
    "note_tweet",
    "public_metrics",
    "referenced_tweets",
)
EXPANSIONS = ("author_id", "referenced_tweets.id", "referenced_tweets.id.author_id")
USER_FIELDS = ("created_at", "description", "name", "username", "verified")
RULE_TAG_PREFIX = "trending-arxiv"

T = TypeVar("T")
_CREATED_AT = re.compile(rb'"created_at"\s*:\s*"([^"]+)"')


class XConfigError(RuntimeError):
    """A problem only the operator can fix (credentials, access level, rules)."""


# -- pure parts ---------------------------------------------------------------------------


def arxiv_url_clause(hosts: Sequence[str] = ARXIV_URL_HOSTS) -> str:
    """`(url:"arxiv.org" OR url:"ar5iv.org" ...)` — the arXiv part of every query/rule."""
    terms = [f'url:"{host}"' for host in hosts]
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def batch_from_rules(
    handles: Iterable[str],
    base_clause: str,
    max_length: int,
    max_rules: int | None = None,
) -> list[str]:
    """Rules `<base> (from:a OR from:b ...)`, each at most `max_length` characters.

    Greedy packing keeps the number of rules (a limited resource) small.
    """
    rules: list[str] = []
    current: list[str] = []

    def render(names: list[str]) -> str:
        inner = " OR ".join(f"from:{name}" for name in names)
        return f"{base_clause} ({inner})" if len(names) > 1 else f"{base_clause} {inner}"

    for raw in handles:
        handle = raw.lstrip("@").strip()
        if not handle:
            continue
        if len(render([handle])) > max_length:
            raise XConfigError(
                f"a rule for from:{handle} alone exceeds the {max_length}-character rule limit"
            )
        if current and len(render([*current, handle])) > max_length:
            rules.append(render(current))
            current = []
        current.append(handle)
    if current:
        rules.append(render(current))
    if max_rules is not None and len(rules) > max_rules:
        raise XConfigError(
            f"the follow list needs {len(rules)} rules but the access level allows {max_rules}; "
            "raise TRENDING_X_MAX_RULES / TRENDING_X_RULE_MAX_LENGTH or use search transport"
        )
    return rules


def rule_tag(value: str) -> str:
    """Tag marking our rules, so we never delete rules someone else added."""
    return f"{RULE_TAG_PREFIX}:{hashlib.sha1(value.encode()).hexdigest()[:12]}"


@dataclass
class StreamBackoff:
    """X's documented reconnect schedule for the filtered stream.

    Network errors: linear, +250 ms per attempt up to 16 s. HTTP errors: exponential from
    5 s up to 320 s. HTTP 429: exponential from 1 minute. `scale` shrinks it in tests.
    """

    network_step: float = 0.25
    network_max: float = 16.0
    http_start: float = 5.0
    http_max: float = 320.0
    rate_limit_start: float = 60.0
    rate_limit_max: float = 960.0
    scale: float = 1.0
    _network: float = field(default=0.0, init=False)
    _http: float = field(default=0.0, init=False)
    _rate: float = field(default=0.0, init=False)

    def reset(self) -> None:
        """A connection succeeded: the next error starts the schedules again."""
        self._network = self._http = self._rate = 0.0

    def network_error(self) -> float:
        self._network = min(self._network + self.network_step, self.network_max)
        return self._network * self.scale

    def http_error(self, status: int) -> float:
        if status == 429:
            self._rate = (
                self.rate_limit_start
                if not self._rate
                else min(self._rate * 2, self.rate_limit_max)
            )
            return self._rate * self.scale
        self._http = self.http_start if not self._http else min(self._http * 2, self.http_max)
        return self._http * self.scale


def rate_limit_wait(reset_epoch: int | None, now: float, fallback: float, cap: float) -> float:
    """Seconds to wait after a 429: until `x-rate-limit-reset` (+1 s), else `fallback`."""
    if reset_epoch is None:
        return min(fallback, cap)
    return min(max(1.0, reset_epoch - now + 1.0), cap)


def created_at_epoch(raw: bytes) -> float | None:
    """Epoch seconds of the first `created_at` in a payload (the post's own, in v2)."""
    match = _CREATED_AT.search(raw)
    if match is None:
        return None
    try:
        return parse_utc(match.group(1).decode()).timestamp()
    except ValueError:
        return None


# -- tweepy with a configurable host ------------------------------------------------------


class _ConfigurableHost:
    """Replaces tweepy's `BaseClient.request` (host is hard-coded there; headers logged)."""

    api_base: str
    bearer_token: str
    session: requests.Session
    user_agent: str
    timeout: float = 30.0

    def request(
        self,
        method: str,
        route: str,
        params: dict[str, Any] | None = None,
        json: Any = None,
        user_auth: bool = False,
    ) -> requests.Response:
        if user_auth:
            raise XConfigError("user-context auth is not supported; use an app bearer token")
        headers = {"User-Agent": self.user_agent, "Authorization": f"Bearer {self.bearer_token}"}
        log.debug("X API request: %s %s params=%s", method, route, params)
        response = self.session.request(
            method, self.api_base + route, params=params, json=json, headers=headers,
            timeout=self.timeout,
        )  # fmt: skip
        status = response.status_code
        if status == 429:
            reset = response.headers.get("x-rate-limit-reset")
            raise tweepy.TooManyRequests(
                response, reset_time=int(reset) if reset and reset.isdigit() else None
            )
        errors: dict[int, type[tweepy.HTTPException]] = {
            400: tweepy.BadRequest,
            401: tweepy.Unauthorized,
            403: tweepy.Forbidden,
            404: tweepy.NotFound,
        }
        if status in errors:
            raise errors[status](response)
        if status >= 500:
            raise tweepy.TwitterServerError(response)
        if not 200 <= status < 300:
            raise tweepy.HTTPException(response)
        return response


class XApiClient(_ConfigurableHost, tweepy.Client):  # type: ignore[misc]
    """tweepy `Client` against `api_base`, returning raw `requests.Response` objects."""

    def __init__(self, bearer_token: str, api_base: str) -> None:
        super().__init__(bearer_token=bearer_token, return_type=requests.Response)
        self.api_base = api_base


class XRulesClient(_ConfigurableHost, tweepy.StreamingClient):  # type: ignore[misc]
    """tweepy `StreamingClient`, used only for its rules API (get/add/delete)."""

    def __init__(self, bearer_token: str, api_base: str) -> None:
        super().__init__(bearer_token, return_type=dict)
        self.api_base = api_base


# -- the producer -------------------------------------------------------------------------
