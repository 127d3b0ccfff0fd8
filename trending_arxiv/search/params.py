"""The questions the CLI and the HTTP API ask, as pydantic models: one set of words and
limits (`trending_arxiv.core.vocabulary`) for both.

The API takes them as query-parameter models (`Annotated[TrendingParams, Query()]`), the
CLI builds them from its options; `.query()` gives the `TrendingQuery`/`SearchQuery` the
read side runs. Bad input is a pydantic `ValidationError` (a `ValueError`) naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trending_arxiv.core.models import parse_utc
from trending_arxiv.core.vocabulary import (
    MAX_PAGE_SIZE,
    MAX_RESULT_WINDOW,
    MAX_SEARCH_TEXT,
    MAX_USER_NAME,
    SearchSort,
    Sort,
    Source,
    Window,
)
from trending_arxiv.search.papers import (
    SearchQuery,
)
from trending_arxiv.search.queries import (
    HALF_LIFE_RANGE,
    TrendingQuery,
    check_as_of,
)

CATEGORY_PATTERN = r"^[A-Za-z][A-Za-z0-9.\-]{0,63}$"
AS_OF_EXAMPLE = "2016-02-09T00:00:00Z"


class _Page(BaseModel):
    """What every listing takes: filters and a page."""

    model_config = ConfigDict(frozen=True)

    category: str | None = Field(
        default=None, max_length=64, pattern=CATEGORY_PATTERN, description="e.g. cs.CL"
    )
    source: Source | None = Field(default=None, description="Only posts from this network.")
    limit: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE, description="Page size.")
    offset: int = Field(default=0, ge=0, le=MAX_RESULT_WINDOW - 1, description="Rows to skip.")

    @field_validator("category", mode="before")
    @classmethod
    def _empty_category_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class RankingParams(_Page):
    """A trending list: papers ranked in a window, optionally as of a moment."""

    window: Window = "24h"
    sort: Sort = "posts"
    as_of: datetime | None = Field(
        default=None,
        description=f"ISO-8601 moment the windows end at (naive means UTC), e.g. {AS_OF_EXAMPLE}."
        " Default: the stream's latest counts.",
    )

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of_is_iso(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            return check_as_of(value)
        if not isinstance(value, str) or len(value) > 40:
            raise ValueError(f"must be an ISO-8601 date-time such as {AS_OF_EXAMPLE}")
        try:
            moment = parse_utc(value)
        except ValueError:
            raise ValueError(
                f"must be an ISO-8601 date-time such as {AS_OF_EXAMPLE}, got {value!r}"
            ) from None
        return check_as_of(moment)  # a moment a ranking can be (1991..2999)

    half_life_hours: float | None = Field(
        default=None, ge=HALF_LIFE_RANGE[0], le=HALF_LIFE_RANGE[1],
        description="Trend score half-life in hours (sort=score); default: the stream's.",
    )  # fmt: skip

    def query(self, user: str | None = None) -> TrendingQuery:
        return TrendingQuery(
            window=self.window, sort=self.sort, limit=self.limit, offset=self.offset,
            category=self.category, source=self.source, as_of=self.as_of, user=user,
            half_life_hours=self.half_life_hours,
        )  # fmt: skip


class TrendingParams(RankingParams):
    """A trending list, over everyone's posts or those of the accounts `user` follows."""

    user: str | None = Field(
        default=None, max_length=MAX_USER_NAME, description="Whose follow list ranks the papers."
    )

    @field_validator("user", mode="before")
    @classmethod
    def _empty_user_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    def query(self, user: str | None = None) -> TrendingQuery:
        return super().query(user or self.user)


class SearchParams(_Page):
    """A full-text search over titles, abstracts and authors."""

    q: str = Field(min_length=1, max_length=MAX_SEARCH_TEXT, description="Search text.")
    window: Window = "all"
    sort: SearchSort = "relevance"
    user: str | None = Field(
        default=None,
        max_length=MAX_USER_NAME,
        description="Only papers the accounts this user follows posted.",
    )

    @field_validator("user", mode="before")
    @classmethod
    def _empty_user_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("q")
    @classmethod
    def _some_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must contain some text")
        return value

    def query(self) -> SearchQuery:
        return SearchQuery(
            text=self.q, window=self.window, sort=self.sort, limit=self.limit,
            offset=self.offset, category=self.category, source=self.source, user=self.user,
        )  # fmt: skip


def describe(error: ValidationError) -> str:
    """One line naming each bad field, e.g. ``limit: Input should be ... 1000``."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()))
        message = str(item.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or str(error)
