"""`trending-arxiv extract` contract, through `run_extract` and `python -m`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from trending_arxiv.cli.extract import run_extract

REPO = Path(__file__).resolve().parents[2]
REAL = REPO / ".." / "shared" / "fixtures" / "real"

X_LINE = json.dumps(
    {
        "data": {
            "id": "100",
            "author_id": "42",
            "created_at": "2024-01-22T10:11:12.000Z",
            "text": "two papers https://t.co/a",
            "entities": {
                "urls": [
                    {"url": "https://t.co/a", "expanded_url": "https://arxiv.org/abs/2401.12345v2"}
                ]
            },
        }
    }
)
BSKY_POST = json.dumps(
    {
        "did": "did:plc:abc",
        "time_us": 1779719009157119,
        "kind": "commit",
        "commit": {
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": "r1",
            "record": {
                "text": "arXiv:hep-th/9711200 and arxiv.org/abs/2402.1...",
                "createdAt": "2026-05-25T14:23:28.757Z",
            },
        },
    }
)
BSKY_LIKE = json.dumps(
    {
        "did": "did:plc:abc",
        "time_us": 1,
        "kind": "commit",
        "commit": {"operation": "create", "collection": "app.bsky.feed.like", "rkey": "l"},
    }
)
BSKY_DELETE = json.dumps(
    {
        "did": "did:plc:abc",
        "time_us": 1779719009157119,
        "kind": "commit",
        "commit": {"operation": "delete", "collection": "app.bsky.feed.post", "rkey": "r1"},
    }
)
X_PAGE = json.dumps({"data": [{"id": "1", "text": "a"}, {"id": "2", "text": "arXiv:1602.02410"}]})


def _run(paths: list[Path], stdin: bytes = b"") -> tuple[int, list[dict[str, object]], list[str]]:
    out, err = io.StringIO(), io.StringIO()
    code = run_extract(paths, out, err, stdin=io.BytesIO(stdin))
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    return code, rows, err.getvalue().splitlines()


def test_one_line_per_post_and_none_for_likes(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([X_LINE, BSKY_LIKE, BSKY_POST, "", BSKY_DELETE, X_PAGE]) + "\n")
    code, rows, errors = _run([src])
    assert code == 0 and errors == []
    assert [(r["post_id"], r["kind"]) for r in rows] == [
        ("100", "post"),
        ("at://did:plc:abc/app.bsky.feed.post/r1", "post"),
        ("at://did:plc:abc/app.bsky.feed.post/r1", "delete"),
        ("1", "post"),
        ("2", "post"),
    ]
    assert rows[0]["arxiv_ids"] == ["2401.12345"]
    assert rows[0]["created_at"] == "2024-01-22T10:11:12Z"
    assert rows[0]["author_id"] == "42" and rows[0]["source"] == "x"
    assert rows[1]["arxiv_ids"] == ["hep-th/9711200"]
    assert rows[4]["arxiv_ids"] == ["1602.02410"]
    for row in rows:
        assert {"post_id", "source", "kind", "author_id", "created_at", "arxiv_ids"} <= set(row)


def test_bad_lines_are_reported_with_file_and_line_and_the_rest_go_on(tmp_path: Path) -> None:
    src = tmp_path / "mixed.jsonl"
    src.write_bytes(
        b"\n".join(
            [
                X_LINE.encode(),
                b"not json at all",
                b'{"unknown": "shape"}',
                b'{"data": {"id": "9", "text": "\xff"}}',
                BSKY_POST.encode(),
                b'{"data": {"id": "7"',
            ]
        )
    )
    code, rows, errors = _run([src])
    assert code == 0
    assert [r["post_id"] for r in rows] == ["100", "at://did:plc:abc/app.bsky.feed.post/r1"]
    assert len(errors) == 4
    assert errors[0].startswith(f"{src}:2: invalid JSON")
    assert errors[1].startswith(f"{src}:3: unrecognised payload")
    assert errors[2].startswith(f"{src}:4: invalid UTF-8")
    assert errors[3].startswith(f"{src}:6: invalid JSON") and "truncated" in errors[3]


def test_stdin_when_no_paths() -> None:
    code, rows, errors = _run([], stdin=(X_LINE + "\n{oops\n").encode())
    assert code == 0
    assert [r["post_id"] for r in rows] == ["100"]
    assert errors == [errors[0]] and errors[0].startswith("<stdin>:2: invalid JSON")


def test_unreadable_file_exits_1_but_others_are_processed(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(X_LINE + "\n")
    missing = tmp_path / "missing.jsonl"
    code, rows, errors = _run([missing, tmp_path, good])
    assert code == 1
    assert [r["post_id"] for r in rows] == ["100"]
    assert len(errors) == 2
    assert errors[0].startswith(f"{missing}: cannot read")
    assert errors[1].startswith(f"{tmp_path}: cannot read")


def test_sse_stream_only_update_events(tmp_path: Path) -> None:
    toot = {
        "id": "1",
        "uri": "https://m.example/users/a/statuses/1",
        "content": '<p><a href="https://arxiv.org/abs/2401.00001">x</a></p>',
        "account": {"id": "5", "acct": "a"},
    }
    sse = (
        ":)\n"
        "event: update\n"
        f"data: {json.dumps(toot)}\n\n"
        "event: delete\n"
        "data: 1\n\n"
        "event: notification\n"
        'data: {"id": "3", "type": "favourite"}\n\n'
    )
    src = tmp_path / "stream.sse"
    src.write_text(sse)
    code, rows, errors = _run([src])
    assert (code, errors) == (0, [])
    assert [(r["source"], r["arxiv_ids"]) for r in rows] == [("mastodon", ["2401.00001"])]


def test_real_truncated_stream_file() -> None:
    path = REAL / "x_v2_twarc_filtered_stream_with_truncated_line.jsonl"
    code, rows, errors = _run([path])
    assert code == 0
    assert len(rows) == 7
    assert len(errors) == 1 and errors[0].startswith(f"{path}:8: invalid JSON")


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(X_LINE + "\nbroken\n")
    proc = subprocess.run(
        [sys.executable, "-m", "trending_arxiv.cli.extract", str(src)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["arxiv_ids"] == ["2401.12345"]
    assert f"{src}:2: invalid JSON" in proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "trending_arxiv.cli.extract", str(tmp_path / "nope")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1 and "cannot read" in missing.stderr
