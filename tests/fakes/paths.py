"""Where the tests' files are: the one place that knows the layout.

`shared/` (recorded third-party payloads, the seed) sits beside the clone on CI
(`<repo>/../shared`); a git worktree one level deeper finds it further up. Set
`TRENDING_ARXIV_SHARED` to use another copy.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _shared() -> Path:
    configured = os.environ.get("TRENDING_ARXIV_SHARED")
    if configured:
        return Path(configured).resolve()
    for folder in REPO.parents:
        if (folder / "shared" / "fixtures").is_dir():
            return (folder / "shared").resolve()
    return (REPO.parent / "shared").resolve()  # absent: the tests that need it say where


SHARED = _shared()
#: Recorded third-party payloads (see SOURCES.md there).
REAL_FIXTURES = SHARED / "fixtures" / "real"
#: The seed papers the sample generator reads.
SHARED_SEED = SHARED / "seed"
#: The package's own data (the seed sample of the demo).
PACKAGE_DATA = REPO / "trending_arxiv" / "data"
SEED_PAPERS = PACKAGE_DATA / "seed_papers.json"
