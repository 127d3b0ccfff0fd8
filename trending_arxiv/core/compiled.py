"""The counting core compiled with mypyc, used only while it matches its sources.

`tools/build_native.py` (run by `make`) compiles `COMPILED_MODULES` into `_native/`
beside this file, with a manifest of the sources it was built from. The package's
`__init__` puts that directory first on its `__path__` (`search_path`) only when every
source is unchanged since the build and the build is for this interpreter: an edited
source is then imported as Python (with a warning), never shadowed by a stale build.
The compiled modules are the same code, so they give the same answers
(`tests/unit/test_compiled.py`); `TRENDING_COMPILED=0` turns them off.
"""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
import warnings
from pathlib import Path

# The worker's hot path: the counting core (~half of its CPU a post, bench/README.md) and the
# ledger step (~1.1 µs a record less compiled, session 17).
COMPILED_MODULES = (
    "buckets", "counting", "alerting", "alert_log", "alert_book", "murmur", "ledger",
)  # fmt: skip
PACKAGE_DIR = Path(__file__).parent
NATIVE_DIR = PACKAGE_DIR / "_native"
MANIFEST = "manifest.json"
# The mypyc group library's module name (in this package, found through `__path__`).
GROUP_NAME = f"{__package__}._native_group"
DISABLE_ENV = "TRENDING_COMPILED"


def build_tag() -> str:
    """What a compiled module is bound to: this interpreter's extension ABI."""
    return str(sysconfig.get_config_var("EXT_SUFFIX"))


def sources_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 over the compiled modules' sources (name and bytes of each)."""
    digest = hashlib.sha256()
    for name in COMPILED_MODULES:
        digest.update(name.encode() + b"\0")
        digest.update((package_dir / f"{name}.py").read_bytes())
    return digest.hexdigest()


def manifest(package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """The manifest a build of the current sources writes."""
    return {"sources_sha256": sources_digest(package_dir), "ext_suffix": build_tag()}


def native_state(package_dir: Path = PACKAGE_DIR) -> str:
    """ "fresh" (built from the current sources, for this interpreter), "stale", "absent"
    or "disabled" (`TRENDING_COMPILED=0`)."""
    if os.environ.get(DISABLE_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return "disabled"
    try:
        built = json.loads((package_dir / "_native" / MANIFEST).read_text())
    except (OSError, ValueError):
        return "absent"
    return "fresh" if built == manifest(package_dir) else "stale"


def search_path(path: list[str], package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The package's `__path__`, with the compiled modules first when they are fresh."""
    state = native_state(package_dir)
    if state == "stale":
        warnings.warn(
            "the compiled counting core is older than its sources: using the Python "
            "modules (run `make native` to rebuild it)",
            RuntimeWarning,
            stacklevel=2,
        )
    if state != "fresh":
        return path
    return [str(package_dir / "_native"), *path]


def is_compiled(module: object) -> bool:
    """Whether an imported module is a compiled one (an extension, not a .py file)."""
    return str(getattr(module, "__file__", "") or "").endswith(build_tag())
