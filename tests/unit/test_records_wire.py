"""The records (msgspec Structs) keep the JSON the topics have always carried.

The previous encoders are written out here as they were (orjson for mentions and count
updates, the stdlib for alerts and dead letters): a mention's bytes are identical, the
other records decode to the same JSON values, and what the previous code wrote (already
on the topics) decodes to the same record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from trending_arxiv.core.models import (
    Alert,
    CountUpdate,
    DeadLetter,
    Mention,
    mention_for_counting,
    to_utc_iso,
)
from trending_arxiv.core.vocabulary import WINDOWS

moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
texts = st.text(max_size=40)
maybe_texts = st.none() | st.text(min_size=1, max_size=20)
counts = st.fixed_dictionaries({w: st.integers(0, 10**9) for w in WINDOWS})
floats = st.floats(allow_nan=False, allow_infinity=False)

mentions = st.builds(
    Mention, post_id=texts, arxiv_id=texts, created_at=moments, source=texts, kind=texts,
    author_id=maybe_texts, author_handle=maybe_texts, op=st.sampled_from(["add", "remove"]),
    text=texts, ref_post_id=maybe_texts,
)  # fmt: skip
updates = st.builds(
    CountUpdate, arxiv_id=texts, as_of=moments, posts=counts, accounts=counts,
    trend_score=floats, velocity=floats, first_seen=st.none() | moments,
    last_seen=st.none() | moments,
    sources=st.dictionaries(st.sampled_from(["x", "bluesky", "mastodon"]), st.integers(0, 99)),
    trend_rank=st.none() | floats,
)  # fmt: skip
alerts = st.builds(
    Alert, alert_id=texts, arxiv_id=texts, rule=texts, reason=texts, triggered_at=moments,
    numbers=st.dictionaries(texts, st.integers(0, 10**6) | floats, max_size=4),
)  # fmt: skip
dead_letters = st.builds(
    DeadLetter, stage=texts, reason=texts, raw=texts, topic=maybe_texts,
    partition=st.none() | st.integers(0, 99), offset=st.none() | st.integers(0, 10**12),
    line=st.none() | st.integers(1, 10**6),
)  # fmt: skip


def _previous_mention(m: Mention) -> bytes:
    return orjson.dumps(
        {
            "post_id": m.post_id, "arxiv_id": m.arxiv_id, "created_at": to_utc_iso(m.created_at),
            "source": m.source, "kind": m.kind, "author_id": m.author_id,
            "author_handle": m.author_handle, "op": m.op, "text": m.text,
            "ref_post_id": m.ref_post_id,
        }
    )  # fmt: skip


def _as_dict(record: Any, names: tuple[str, ...]) -> dict[str, Any]:
    payload = {name: getattr(record, name) for name in record.__struct_fields__}
    for name in names:
        if payload[name] is not None:
            payload[name] = to_utc_iso(payload[name])
    return payload


def _previous_update(u: CountUpdate) -> bytes:
    return orjson.dumps(_as_dict(u, ("as_of", "first_seen", "last_seen")))


def _previous_alert(a: Alert) -> bytes:
    return json.dumps(_as_dict(a, ("triggered_at",)), separators=(",", ":")).encode()


def _previous_dead_letter(d: DeadLetter) -> bytes:
    return json.dumps(_as_dict(d, ()), ensure_ascii=False).encode()


@settings(max_examples=300)
@given(mentions)
def test_a_mention_is_written_byte_for_byte_as_before(mention: Mention) -> None:
    assert mention.to_json_bytes() == _previous_mention(mention)
    assert Mention.from_json(_previous_mention(mention)) == mention
    assert Mention.from_json(orjson.loads(_previous_mention(mention))) == mention


@settings(max_examples=300)
@given(mentions)
def test_a_mention_read_for_counting_is_the_mention_without_its_text(mention: Mention) -> None:
    counted = mention_for_counting(mention.to_json_bytes())
    assert counted == msgspec.structs.replace(mention, text="", ref_post_id=None)


def test_counting_refuses_the_mentions_the_sink_refuses() -> None:
    """The counting agent skips a mention's text, but not its checks: a mention counts
    only where the sink can index it."""
    head = (
        '{"post_id":"p","arxiv_id":"a","created_at":"2026-01-01T00:00:00Z",'
        '"source":"x","kind":"post"'
    )
    for tail, readable in (
        (',"text":5}', False),
        (',"text":[1,2]}', False),
        (',"ref_post_id":3}', False),
        (',"op":"edit"}', False),
        (',"created_at":"yesterday"}', False),
        (',"ref_post_id":null,"text":"x"}', True),
        (',"text":"a\\"b","ref_post_id":"q"}', True),
        ("}", True),
    ):
        raw = (head + tail).encode()
        for read in (Mention.from_json, mention_for_counting):
            try:
                read(raw)
            except ValueError:
                assert not readable, (tail, read)
            else:
                assert readable, (tail, read)


@settings(max_examples=300)
@given(updates)
def test_a_count_update_reads_and_writes_the_same_json(update: CountUpdate) -> None:
    # Byte-identical too, but for the exponent of very large floats (`1e16`, was `1e+16`),
    # which every JSON reader parses to the same number.
    assert orjson.loads(update.to_json_bytes()) == orjson.loads(_previous_update(update))
    assert json.loads(update.to_json_bytes()) == json.loads(_previous_update(update))
    assert CountUpdate.from_json(_previous_update(update)) == update


@settings(max_examples=300)
@given(alerts)
def test_an_alert_reads_and_writes_the_same_json(alert: Alert) -> None:
    assert json.loads(alert.to_json_bytes()) == json.loads(_previous_alert(alert))
    assert Alert.from_json(_previous_alert(alert)) == alert


@settings(max_examples=300)
@given(dead_letters)
def test_a_dead_letter_reads_the_same(dead_letter: DeadLetter) -> None:
    assert json.loads(dead_letter.to_json_bytes()) == json.loads(_previous_dead_letter(dead_letter))


def test_datetimes_are_utc_whatever_was_given() -> None:
    plus_two = timezone(timedelta(hours=2))
    mention = Mention(
        post_id="p", arxiv_id="a", created_at=datetime(2024, 2, 1, 2, tzinfo=plus_two),
        source="x", kind="post",
    )  # fmt: skip
    assert mention.created_at.tzinfo is UTC
    assert mention.created_at == datetime(2024, 2, 1, tzinfo=UTC)
    assert b'"created_at":"2024-02-01T00:00:00Z"' in mention.to_json_bytes()
    naive = Mention.from_json(
        b'{"post_id":"p","arxiv_id":"a","created_at":"2024-02-01T00:00:00",'
        b'"source":"x","kind":"post"}'
    )
    assert naive.created_at == datetime(2024, 2, 1, tzinfo=UTC)


def test_bad_records_are_value_errors() -> None:
    for raw in (b"{not json", b'{"post_id":"p"}', b'{"post_id":1,"arxiv_id":"a"}', b"[]"):
        try:
            Mention.from_json(raw)
        except ValueError:
            continue
        raise AssertionError(f"{raw!r} was read")
