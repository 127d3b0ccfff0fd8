"""Follow-list entries in the forms people write them."""

from __future__ import annotations

import pytest

from trending_arxiv.core.accounts import parse_account_ref


@pytest.mark.parametrize(
    ("text", "source", "value", "is_handle"),
    [
        ("@Smerity", "x", "smerity", True),
        ("x:@Smerity", "x", "smerity", True),
        ("x:Smerity", "x", "smerity", True),
        ("x:12345", "x", "12345", False),
        ("  x:12345 ", "x", "12345", False),
        ("alice.bsky.social", "bluesky", "alice.bsky.social", True),
        ("@Alice.bsky.social", "bluesky", "alice.bsky.social", True),
        ("jay.bsky.team", "bluesky", "jay.bsky.team", True),
        ("bluesky:example.com", "bluesky", "example.com", True),
        ("did:plc:z72i7hdynmk6r22z27h6tvur", "bluesky", "did:plc:z72i7hdynmk6r22z27h6tvur", False),
        ("bluesky:did:plc:abc", "bluesky", "did:plc:abc", False),
        ("did:web:example.com", "bluesky", "did:web:example.com", False),
        ("@Gargron@mastodon.social", "mastodon", "gargron@mastodon.social", True),
        ("gargron@mastodon.social", "mastodon", "gargron@mastodon.social", True),
        (
            "mastodon:@mastodonpy_test@localhost:3000",
            "mastodon",
            "mastodonpy_test@localhost:3000",
            True,
        ),
        ("mastodon:109440137734600341", "mastodon", "109440137734600341", False),
        ("reddit:t2_abc", "reddit", "t2_abc", False),
    ],
)
def test_accepted_forms(text: str, source: str, value: str, is_handle: bool) -> None:
    ref = parse_account_ref(text)
    assert (ref.source, ref.value, ref.is_handle) == (source, value, is_handle)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "not an account"),
        ("12345", "write x:12345"),
        ("smerity", "accepted: @name"),
        ("@waytoolongname_over15", "accepted"),
        ("x:not a name", "not a x account"),
        ("https://x.com/smerity", "accepted"),
        ("a\nb", "not an account"),
    ],
)
def test_rejected_forms_say_what_is_accepted(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_account_ref(text)


def test_a_handle_has_no_account_until_resolved() -> None:
    with pytest.raises(ValueError, match="resolve it first"):
        _ = parse_account_ref("@smerity").account
    assert parse_account_ref("x:1").account == "x:1"
