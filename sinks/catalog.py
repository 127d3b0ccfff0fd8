"""Local paper metadata (a snapshot file) consulted before asking arXiv."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any


def bundled_seed_catalog_path() -> Path:
    """The metadata of the seed page's 20 papers, shipped with the package."""
    return Path(str(resources.files("trending_arxiv") / "data" / "seed_papers.json"))


def load_catalog_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read paper metadata keyed by arXiv id from a JSON list or JSON-lines file."""
    text = path.read_text(encoding="utf-8")
    records: list[dict[str, Any]]
    if text.lstrip().startswith("["):
        records = json.loads(text)
    else:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    catalog: dict[str, dict[str, Any]] = {}
    for record in records:
        arxiv_id = record.get("arxiv_id") or record.get("id")
        if arxiv_id:
            catalog[str(arxiv_id)] = record
    return catalog
