"""HTML pages the API serves besides the main page: the API reference (`/docs`, Swagger UI
from a pinned package, so it works offline) and one page per paper (`/papers/<id>`)."""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
DOCS_ASSETS = "/docs-assets"


def swagger_ui_dir() -> Path:
    """The Swagger UI files shipped by the pinned `swagger-ui-py` package (found without
    importing it: only its static files are used)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (pip install swagger-ui-py)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _root(request: Request) -> str:
    """The app's own prefix (behind a proxy's root_path), without a trailing slash."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def add_pages(app: FastAPI) -> None:
    """Register /docs and /papers/<id>; call before mounting the main page at /."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_dir()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} API",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon-32x32.png",
        )

    paper_page = (STATIC_DIR / "paper.html").read_text(encoding="utf-8")

    @app.get("/papers/{arxiv_id:path}", include_in_schema=False)
    def paper(request: Request, arxiv_id: str) -> HTMLResponse:
        # Old-style ids have a slash ("hep-th/9711200"), so the page's depth varies:
        # a <base> at the app's root makes its relative links (api/..., style.css) work.
        base = html.escape(_root(request) + "/", quote=True)
        return HTMLResponse(paper_page.replace("<head>", f'<head>\n  <base href="{base}">', 1))
