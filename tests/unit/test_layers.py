"""The pure core's third-party imports, as an allow-list.

`.importlinter` forbids named packages; this catches a core module that starts importing a
package nobody thought to forbid.
"""

from __future__ import annotations

import sys

import grimp

# mypy_extensions: the native int types (`i64`) of the compiled core; `int` as Python.
CORE_CODECS = {"msgspec", "orjson", "mypy_extensions"}


def test_core_imports_only_the_standard_library_and_its_codecs() -> None:
    graph = grimp.build_graph("trending_arxiv", include_external_packages=True)
    core = {"trending_arxiv.core", *graph.find_descendants("trending_arxiv.core")}
    outside = {
        (module, imported)
        for module in core
        for imported in graph.find_modules_directly_imported_by(module)
        if not imported.startswith("trending_arxiv.core")
        and imported.split(".")[0] not in sys.stdlib_module_names
        and imported.split(".")[0] not in CORE_CODECS
    }
    assert not outside, f"the core imports beyond the stdlib and its allow-list: {outside}"
