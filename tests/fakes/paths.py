"""Where the recorded third-party payloads live (`<repo>/../shared/fixtures/real`)."""

from __future__ import annotations

from pathlib import Path

REAL_FIXTURES = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real"
).resolve()
