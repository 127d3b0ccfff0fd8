"""The Kibana saved objects: they parse, reference only fields our index templates map,
hang together (every reference resolves), and the import request is what Kibana's saved
objects API expects (checked against a local HTTP receiver)."""

from __future__ import annotations

import json
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import pytest
from typer.testing import CliRunner

from sinks.alerts import ALERTS_MAPPINGS
from sinks.indices import MENTIONS_MAPPINGS, PAPERS_MAPPINGS
from sinks.kibana_import import (
    DEFAULT_FILE,
    import_saved_objects,
    kibana_import_command,
    load_saved_objects,
)
from tests.fakes.http import FakeHttpServer, Reply, Request

MAPPINGS = {"mentions": MENTIONS_MAPPINGS, "papers": PAPERS_MAPPINGS, "alerts": ALERTS_MAPPINGS}


def _mapped_fields(mappings: dict[str, Any]) -> set[str]:
    found: set[str] = set()

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            path = prefix + name
            if "type" in spec or "properties" not in spec:
                found.add(path)
            for sub in spec.get("fields", {}):
                found.add(f"{path}.{sub}")
            walk(spec.get("properties", {}), path + ".")

    walk(mappings["properties"], "")
    return found


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return load_saved_objects(DEFAULT_FILE)


def _data_view_fields(objects: list[dict[str, Any]]) -> dict[str, set[str]]:
    fields = {}
    for obj in objects:
        if obj["type"] == "index-pattern":
            title = obj["attributes"]["title"]
            kind = re.fullmatch(r"trending-(mentions|papers|alerts)", title)
            assert kind, title
            fields[obj["id"]] = _mapped_fields(MAPPINGS[kind.group(1)])
    return fields


def test_ndjson_parses_with_the_expected_objects(objects: list[dict[str, Any]]) -> None:
    kinds = [o["type"] for o in objects]
    assert kinds.count("index-pattern") == 3 and kinds.count("dashboard") == 1
    assert kinds.count("lens") >= 5
    titles = {o["attributes"]["title"] for o in objects}
    for wanted in ("Mentions over time by source", "Top papers", "Top categories",
                   "Distinct accounts", "Alert timeline"):  # fmt: skip
        assert wanted in titles
    assert len({o["id"] for o in objects}) == len(objects)


def test_every_field_a_visualisation_uses_is_mapped(objects: list[dict[str, Any]]) -> None:
    fields = _data_view_fields(objects)
    for obj in objects:
        if obj["type"] == "index-pattern":
            assert obj["attributes"]["timeFieldName"] in fields[obj["id"]]
        if obj["type"] != "lens":
            continue
        refs = {r["name"]: r["id"] for r in obj["references"]}
        layers = obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
        for layer_id, layer in layers.items():
            view = refs[f"indexpattern-datasource-layer-{layer_id}"]
            assert set(layer["columnOrder"]) == set(layer["columns"])
            for column in layer["columns"].values():
                field = column["sourceField"]
                if field != "___records___":
                    assert field in fields[view], f"{obj['id']}: {field} not in {view}"
                order = column.get("params", {}).get("orderBy", {})
                if order.get("type") == "column":
                    assert order["columnId"] in layer["columns"]


def test_dashboard_panels_resolve(objects: list[dict[str, Any]]) -> None:
    ids = {(o["type"], o["id"]) for o in objects}
    dashboard = next(o for o in objects if o["type"] == "dashboard")
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    refs = {r["name"]: (r["type"], r["id"]) for r in dashboard["references"]}
    assert len(panels) == len(refs) >= 5
    for panel in panels:
        assert refs[f"{panel['panelIndex']}:{panel['panelRefName']}"] in ids
        grid = panel["gridData"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 48
    json.loads(dashboard["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids


def test_namespace_rewrites_data_views() -> None:
    titles = {o["attributes"]["title"] for o in load_saved_objects(DEFAULT_FILE, "prod")
              if o["type"] == "index-pattern"}  # fmt: skip
    assert titles == {"prod-mentions", "prod-papers", "prod-alerts"}


def test_a_second_namespace_gets_its_own_ids_and_references() -> None:
    default = load_saved_objects(DEFAULT_FILE)
    first, second = (load_saved_objects(DEFAULT_FILE, ns) for ns in ("demo-a", "demo-b"))
    default_ids = {(o["type"], o["id"]) for o in default}
    first_ids = {(o["type"], o["id"]) for o in first}
    second_ids = {(o["type"], o["id"]) for o in second}
    # Importing one namespace never overwrites another's objects (Kibana keys by type+id).
    assert len(first_ids) == len(second_ids) == len(default_ids) == len(default)
    assert not first_ids & second_ids and not first_ids & default_ids
    assert {i for _, i in first_ids} == {f"demo-a-{o['id']}" for o in default}
    for objects in (first, second):
        ids = {(o["type"], o["id"]) for o in objects}
        for obj in objects:  # every reference points into the same namespace's objects
            for ref in obj["references"]:
                assert (ref["type"], ref["id"]) in ids, (obj["id"], ref)
    dashboards = [o["attributes"]["title"] for o in first if o["type"] == "dashboard"]
    assert dashboards == ["Trending arXiv (demo-a)"]
    names = {o["attributes"]["name"] for o in first if o["type"] == "index-pattern"}
    assert names == {f"Trending arXiv {kind} (demo-a)" for kind in ("mentions", "papers", "alerts")}
    # The default namespace keeps the file's ids, so an existing import is updated in place.
    assert default_ids == {
        (o["type"], o["id"]) for o in load_saved_objects(DEFAULT_FILE, "trending")
    }


class FakeKibana(FakeHttpServer):
    def __init__(self, answer: dict[str, Any], status: int = 200) -> None:
        super().__init__()
        self.answer, self.status = answer, status

    def handle(self, request: Request, reply: Reply) -> None:
        reply.send_json(self.status, self.answer)


def test_import_request_is_what_kibana_expects(objects: list[dict[str, Any]]) -> None:
    with FakeKibana({"success": True, "successCount": len(objects)}) as kibana:
        result = CliRunner().invoke(
            _single_command_app(), ["--url", kibana.url + "/", "--namespace", "demo-1"]
        )
    assert result.exit_code == 0, result.output
    assert f"imported {len(objects)}" in result.output
    [request] = kibana.requests
    assert request.method == "POST" and request.path == "/api/saved_objects/_import"
    assert request.query == {"overwrite": ["true"]}
    assert request.headers["kbn-xsrf"]
    content_type = request.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
    )
    [part] = list(message.iter_parts())
    assert part.get_param("name", header="content-disposition") == "file"
    assert str(part.get_filename()).endswith(".ndjson")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    sent = [json.loads(line) for line in payload.decode().splitlines()]
    assert [o["id"] for o in sent] == [f"demo-1-{o['id']}" for o in objects]
    views = {o["attributes"]["title"] for o in sent if o["type"] == "index-pattern"}
    assert views == {"demo-1-mentions", "demo-1-papers", "demo-1-alerts"}


def test_import_failures_are_clear(objects: list[dict[str, Any]]) -> None:
    partial = {
        "success": False,
        "successCount": 2,
        "errors": [{"type": "lens", "id": "x", "error": {"type": "missing_references"}}],
    }
    with FakeKibana(partial) as kibana, pytest.raises(RuntimeError, match="missing_references"):
        import_saved_objects(kibana.url, objects)
    with FakeKibana({"message": "Unauthorized"}, 401) as kibana:
        with pytest.raises(RuntimeError, match="401: Unauthorized"):
            import_saved_objects(kibana.url, objects)
        url = kibana.url
    with pytest.raises(RuntimeError, match="cannot reach Kibana"):
        import_saved_objects(url, objects, timeout=2)


def _single_command_app() -> Any:
    import typer

    app = typer.Typer()
    app.command()(kibana_import_command)
    return app
