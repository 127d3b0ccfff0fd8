"""`trending-arxiv kibana import`: load the dashboards through Kibana's saved objects API.

The saved objects (`sinks/kibana/trending-arxiv.ndjson`: data views for the mentions,
papers and alerts indices, six Lens visualisations and the "Trending arXiv" dashboard)
are written for the default namespace `trending`; importing for another namespace
rewrites the data views' index names and gives every object an id of that namespace
(`saved_object_id`), so importing a second namespace adds its own dashboard instead of
overwriting the first one's. The request is
`POST {url}/api/saved_objects/_import?overwrite=true`, multipart with the NDJSON as the
`file` part, and the `kbn-xsrf` header Kibana requires of API writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

DEFAULT_FILE = Path(__file__).resolve().parent / "kibana" / "trending-arxiv.ndjson"
DEFAULT_NAMESPACE = "trending"


def saved_object_id(base_id: str, namespace: str) -> str:
    """The id of a saved object for `namespace`: the file's id for the default namespace
    (ids already imported stay the same), else prefixed with the namespace."""
    return base_id if namespace == DEFAULT_NAMESPACE else f"{namespace}-{base_id}"


def load_saved_objects(path: Path, namespace: str = DEFAULT_NAMESPACE) -> list[dict[str, Any]]:
    """Parse the NDJSON; point the data views at `namespace`'s indices and derive every
    object's id (and every reference to it) from `namespace`."""
    objects: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON: {error}") from error
        if not isinstance(obj, dict) or "type" not in obj or "id" not in obj:
            raise ValueError(f"{path}:{number}: not a saved object (needs type and id)")
        if obj["type"] == "index-pattern" and namespace != DEFAULT_NAMESPACE:
            title = obj["attributes"]["title"]
            if title.startswith(DEFAULT_NAMESPACE + "-"):
                obj["attributes"]["title"] = namespace + title[len(DEFAULT_NAMESPACE) :]
        objects.append(obj)
    if namespace != DEFAULT_NAMESPACE:
        # Ids are rewritten as whole values (one id is a prefix of others), and only
        # those of objects in the file: a reference to anything else stays as it is.
        ours = {o["id"] for o in objects}
        for obj in objects:
            obj["id"] = saved_object_id(obj["id"], namespace)
            for ref in obj.get("references", []):
                if ref.get("id") in ours:
                    ref["id"] = saved_object_id(ref["id"], namespace)
            # Two namespaces' dashboards and data views are told apart by name too.
            if obj["type"] == "dashboard":
                obj["attributes"]["title"] += f" ({namespace})"
            elif obj["type"] == "index-pattern" and obj["attributes"].get("name"):
                obj["attributes"]["name"] += f" ({namespace})"
    return objects


def to_ndjson(objects: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(o, separators=(",", ":")) + "\n" for o in objects).encode()


def import_saved_objects(
    url: str,
    objects: list[dict[str, Any]],
    api_key: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """POST the objects to Kibana; returns its JSON answer, raises RuntimeError on failure."""
    headers = {"kbn-xsrf": "trending-arxiv"}
    if api_key:
        headers["Authorization"] = f"ApiKey {api_key}"
    endpoint = url.rstrip("/") + "/api/saved_objects/_import"
    try:
        response = httpx.post(
            endpoint,
            params={"overwrite": "true"},
            headers=headers,
            files={"file": ("trending-arxiv.ndjson", to_ndjson(objects), "application/ndjson")},
            timeout=timeout,
        )
    except httpx.HTTPError as error:
        raise RuntimeError(f"cannot reach Kibana at {url}: {type(error).__name__}") from error
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        message = body.get("message") or response.text[:300]
        raise RuntimeError(f"Kibana answered HTTP {response.status_code}: {message}")
    if not body.get("success", False):
        errors = "; ".join(
            f"{e.get('type')} {e.get('id')}: {e.get('error', {}).get('type')}"
            for e in body.get("errors", [])
        )
        raise RuntimeError(f"Kibana imported {body.get('successCount', 0)} objects; {errors}")
    return body


def kibana_import_command(
    url: Annotated[str, typer.Option(help="Kibana's base URL.")] = "http://127.0.0.1:5601",
    file: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Saved objects NDJSON.")
    ] = DEFAULT_FILE,
    namespace: Annotated[
        str | None,
        typer.Option(help="Namespace whose indices the data views use (default: settings)."),
    ] = None,
) -> None:
    """Import the Trending arXiv data views and dashboard into Kibana (overwriting)."""
    from trending_arxiv.settings import CommonSettings

    chosen = namespace or CommonSettings().namespace
    try:
        objects = load_saved_objects(file, chosen)
        answer = import_saved_objects(url, objects, api_key=os.environ.get("KIBANA_API_KEY"))
    except (ValueError, RuntimeError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from error
    typer.echo(f"imported {answer.get('successCount')} saved objects into {url} "
               f"(namespace {chosen!r})")  # fmt: skip
