"""`trending-arxiv subscriptions add` rejects incomplete subscriptions before touching
Elasticsearch, with a clear message that never repeats the address."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from trending_arxiv.cli.subscriptions import subscriptions_app

ADDRESS = "private.person-55@example.org"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "nlp", "--category", "cs.CL"], "choose one delivery"),
        (["add", "nlp", "--email", ADDRESS, "--slack", "http://x"], "choose one delivery"),
        (["add", "nlp", "--email", ADDRESS], "either a trigger or a digest"),
        (
            ["add", "nlp", "--email", ADDRESS, "--digest", "daily", "--trigger", "accounts"],
            "either a trigger or a digest",
        ),
        (["add", "nlp", "--email", ADDRESS, "--digest", "weekly"], "digest"),
        (
            ["add", "nlp", "--webhook", "http://x", "--trigger", "accounts", "--window", "all"],
            "window",
        ),
        (["add", "bad name", "--stdout", "--digest", "daily"], "not a subscription name"),
        (["add", "nlp", "--id", "not-an-id", "--stdout", "--digest", "daily"], "arXiv"),
        (["add"], "give a NAME"),
    ],
)
def test_add_refuses_incomplete_subscriptions(args: list[str], message: str) -> None:
    result = CliRunner().invoke(subscriptions_app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert ADDRESS not in result.output


def test_a_bad_file_is_named_with_the_reason(tmp_path: Path) -> None:
    file = tmp_path / "subs.yaml"
    delivery = f"{{type: email, to: '{ADDRESS}'}}"
    file.write_text(f"subscriptions:\n  - name: a\n    delivery: {delivery}\n")
    result = CliRunner().invoke(subscriptions_app, ["add", "--file", str(file)])
    assert result.exit_code == 2 and str(file) in result.output
    assert "either a trigger or a digest" in result.output and ADDRESS not in result.output
