"""Compile the counting core (`trending_arxiv.core.compiled.COMPILED_MODULES`) with mypyc.

    python tools/build_native.py   # or `make native`; ~10 s, needs a C compiler

The extensions and a manifest of their sources go to `trending_arxiv/core/_native/`,
which the package uses only while the manifest matches the sources
(`trending_arxiv.core.compiled`). Without a compiler the build fails here and the
pipeline runs the same modules as Python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The build reads the sources: importing the package must not load (or warn about) the
# build it replaces.
os.environ["TRENDING_COMPILED"] = "0"

from trending_arxiv.core.compiled import (
    COMPILED_MODULES,
    GROUP_NAME,
    MANIFEST,
    NATIVE_DIR,
    PACKAGE_DIR,
    build_tag,
    manifest,
)

ROOT = PACKAGE_DIR.parent.parent
# Run by the interpreter in a subprocess: setuptools' command line, mypyc's C build.
SETUP = """
import sys
from mypyc.build import mypycify
from setuptools import setup

target, modules, group = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
del sys.argv[1:4]
setup(
    name="trending-arxiv-native",
    ext_modules=mypycify(modules, target_dir=target, group_name=group),
)
"""


def build() -> Path:
    """Build into a scratch directory, then replace `_native/` with the result."""
    expected = manifest()
    sources = [str((PACKAGE_DIR / f"{name}.py").relative_to(ROOT)) for name in COMPILED_MODULES]
    package = PACKAGE_DIR.relative_to(ROOT)
    with tempfile.TemporaryDirectory(prefix="trending-native-") as scratch:
        work = Path(scratch)
        command = [
            sys.executable,
            "-c",
            SETUP,
            str(work / "c"),
            ",".join(sources),
            GROUP_NAME,
            "build_ext",
            "--build-lib",
            str(work / "lib"),
            "--build-temp",
            str(work / "tmp"),
        ]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise SystemExit(f"mypyc build failed ({done.returncode}); the Python modules stay")
        built = sorted((work / "lib" / package).glob(f"*{build_tag()}"))
        staged = work / "native"
        staged.mkdir()
        for path in built:
            shutil.copy2(path, staged / path.name)
        if manifest() != expected:  # a source changed during the build
            raise SystemExit("sources changed during the build; run it again")
        (staged / MANIFEST).write_text(json.dumps(expected, indent=1) + "\n")
        shutil.rmtree(NATIVE_DIR, ignore_errors=True)
        shutil.copytree(staged, NATIVE_DIR)
    return NATIVE_DIR


if __name__ == "__main__":
    out = build()
    print(f"compiled {', '.join(COMPILED_MODULES)} -> {out.relative_to(ROOT)}")
