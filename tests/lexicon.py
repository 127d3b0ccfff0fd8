"""Validation of our AT Protocol JSON against the lexicons, with the `atproto` package's
models (strict string formats: at:// URIs, DIDs, datetimes)."""

from __future__ import annotations

from typing import Any, TypeVar

from atproto_client import models
from atproto_client.models.base import ModelBase
from atproto_client.models.utils import get_or_create

M = TypeVar("M", bound=ModelBase)


def _no_extra_fields(model: Any, where: str) -> None:
    if isinstance(model, ModelBase):
        extra = model.model_extra or {}
        assert not extra, f"{where}: fields the lexicon does not have: {sorted(extra)}"
        for name in type(model).model_fields:
            _no_extra_fields(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for i, item in enumerate(model):
            _no_extra_fields(item, f"{where}[{i}]")


def validate(data: dict[str, Any], model: type[M]) -> M:
    """`data` as the lexicon's model; fails on a wrong type, format or an unknown field."""
    built = get_or_create(data, model, strict=True, strict_string_format=True)
    assert isinstance(built, model), built
    _no_extra_fields(built, model.__module__.rsplit(".", 1)[-1])
    return built


SKELETON = models.AppBskyFeedGetFeedSkeleton.Response
DESCRIBE = models.AppBskyFeedDescribeFeedGenerator.Response
GENERATOR_RECORD = models.AppBskyFeedGenerator.Record
PUT_RECORD = models.ComAtprotoRepoPutRecord.Data
