"""The counting core's compiled build: in use only while it matches its sources, and
the same answers as the Python modules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.python_core import CORE_DIR, answers
from trending_arxiv.core import alert_log, alerting, buckets, counting, ledger, murmur
from trending_arxiv.core.compiled import (
    COMPILED_MODULES,
    DISABLE_ENV,
    MANIFEST,
    is_compiled,
    manifest,
    native_state,
    search_path,
)

ROOT = CORE_DIR.parent.parent


@pytest.fixture
def c_compiler() -> None:
    """`make` builds the modules wherever there is a C compiler: without one, a test of
    the build fails under CI (which has one) and is skipped elsewhere."""
    if shutil.which("cc") or shutil.which("gcc"):
        return
    message = "no C compiler here (apt-get install -y gcc): the Python modules run"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the compiled modules' sources, with a build's manifest for them."""
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    for name in COMPILED_MODULES:
        shutil.copy(CORE_DIR / f"{name}.py", tmp_path / f"{name}.py")
    (tmp_path / "_native").mkdir()
    (tmp_path / "_native" / MANIFEST).write_text(json.dumps(manifest(tmp_path)))
    return tmp_path


def test_a_build_comes_first_while_it_matches_its_sources(
    package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    native = str(package / "_native")
    assert native_state(package) == "fresh"
    assert search_path(["core"], package) == [native, "core"]
    monkeypatch.setenv(DISABLE_ENV, "0")
    assert native_state(package) == "disabled"
    assert search_path(["core"], package) == ["core"]


def test_an_edited_source_is_imported_as_python_with_a_warning(package: Path) -> None:
    with (package / "alerting.py").open("a") as source:
        source.write("\n# edited after the build\n")
    assert native_state(package) == "stale"
    with pytest.warns(RuntimeWarning, match="make native"):
        assert search_path(["core"], package) == ["core"]


def test_a_build_for_another_interpreter_or_none_is_not_used(package: Path) -> None:
    built = json.loads((package / "_native" / MANIFEST).read_text())
    built["ext_suffix"] = ".cpython-312-x86_64-linux-gnu.so"
    (package / "_native" / MANIFEST).write_text(json.dumps(built))
    assert native_state(package) == "stale"
    shutil.rmtree(package / "_native")
    assert native_state(package) == "absent"
    assert search_path(["core"], package) == ["core"]


@pytest.mark.usefixtures("c_compiler")
def test_the_build_is_in_use() -> None:
    assert native_state() == "fresh", "the compiled counting core is missing or stale: make native"
    compiled = (buckets, counting, alerting, alert_log, murmur, ledger)
    assert all(is_compiled(module) for module in compiled)


@pytest.mark.usefixtures("c_compiler")
def test_compiled_and_python_modules_give_the_same_answers() -> None:
    """Counts, trend scores and ranks, velocity and every alert, to the last digit."""
    assert is_compiled(counting)
    script = (
        "import json\n"
        "from tests.python_core import answers\n"
        "from trending_arxiv.core import counting, compiled\n"
        "assert not compiled.is_compiled(counting)\n"
        "print(json.dumps(answers()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, DISABLE_ENV: "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    python = json.loads(done.stdout)
    compiled = answers()
    assert len(compiled["corpus"]["alerts"]) > 50 and len(compiled["corpus"]["counts"]) > 100
    assert compiled == python


@pytest.mark.usefixtures("c_compiler")
def test_an_installed_package_carries_the_build_and_uses_it(tmp_path: Path) -> None:
    """What the image's `pip install .` does (the Dockerfile's native stage builds
    `_native/`): the wheel holds the build, and the installed package runs it."""
    assert native_state() == "fresh", "make native first"
    source = tmp_path / "source"  # built out of the checkout: no build/ left in it
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("trending_arxiv", "producers", "streams", "sinks"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("trending_arxiv-*.whl")
    installed = tmp_path / "site"
    shutil.unpack_archive(wheel, installed, format="zip")
    assert (installed / "trending_arxiv/core/_native" / MANIFEST).is_file()
    script = (
        "from trending_arxiv.core import compiled, counting, ledger\n"
        "print(counting.__file__)\n"
        "assert compiled.native_state() == 'fresh'\n"
        "assert compiled.is_compiled(counting) and compiled.is_compiled(ledger)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,  # not the checkout: the installed copy comes first
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip().startswith(str(installed / "trending_arxiv/core/_native"))
