"""The pure core's modules as Python, also where their compiled build is in use."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

from trending_arxiv.core.compiled import PACKAGE_DIR as CORE_DIR


def python_module(name: str) -> ModuleType:
    """A fresh module run from `trending_arxiv/core/<name>.py` (its imports are the
    modules in use). A test can replace its functions and its calls see it: a compiled
    module calls its own functions directly."""
    qualified = f"trending_arxiv.core.{name}__python"
    spec = importlib.util.spec_from_file_location(qualified, CORE_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def answers(posts: int = 20_000) -> dict[str, Any]:
    """Every paper's final counts and every alert of a replayed corpus with busy papers
    (300 papers, alert thresholds low enough to fire often), as JSON-ready values."""
    from bench.corpus import generate
    from trending_arxiv.core.alerting import AlertRules
    from trending_arxiv.core.simulate import read_lines, simulate
    from trending_arxiv.demo import bundled_sample_path

    rules = AlertRules(min_accounts_1h=3, velocity_ratio=2.0, velocity_min_posts_1h=3)
    found: dict[str, Any] = {}
    for name, lines in (
        ("seed", list(read_lines([bundled_sample_path()]))),
        ("corpus", list(generate(posts, seed=3, papers=300))),
    ):
        result = simulate(lines, alert_rules=rules)
        found[name] = {
            "counts": {i: u.to_json_bytes().decode() for i, u in sorted(result.counts.items())},
            "alerts": [alert.to_json_bytes().decode() for alert in result.alerts],
        }
    return found
