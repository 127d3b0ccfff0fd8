"""Load `tools/fuzz_corpus.py` (a script, not a package) for the hostile-input tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fuzz_corpus.py"


def fuzz_corpus() -> ModuleType:
    """The generator module, imported once from its file."""
    name = "trending_fuzz_corpus"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TOOL)
        assert spec is not None and spec.loader is not None, TOOL
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules[name]
