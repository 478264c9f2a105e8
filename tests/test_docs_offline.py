"""/docs works offline: local assets, no inline script, Authorize, examples and schemas."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute
from support import Api

from ocop_trace.api import auth, batches, catalog, labels, ledger
from ocop_trace.docs_offline import TAGS


def spec(api: Api) -> dict[str, Any]:
    return dict(api.client.get("/openapi.json").json())


def test_docs_load_everything_from_the_service_itself(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200
    html = page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    assert all(s.startswith("/") for s in sources), sources  # no CDN, no other host
    assert "<script>" not in html, "inline script: the Content-Security-Policy refuses it"
    for source in sources:
        asset = api.client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 100, source
    bundle = api.client.get("/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text
    assert "/openapi.json" in api.client.get("/docs/init.js").text


def test_the_bearer_scheme_is_declared_so_authorize_works(api: Api) -> None:
    document = spec(api)
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"HTTPBearer": {**schemes["HTTPBearer"], "type": "http", "scheme": "bearer"}}
    operation = document["paths"]["/api/v1/batches"]["post"]
    assert {"HTTPBearer": []} in operation["security"]


def test_groups_are_ordered_as_a_user_meets_them(api: Api) -> None:
    document = spec(api)
    names = [t["name"] for t in document["tags"]]
    assert names[0] == "auth"
    assert names == [t["name"] for t in TAGS]
    used = {tag for ops in document["paths"].values() for op in ops.values() for tag in op["tags"]}
    assert used <= set(names), used - set(names)


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def test_every_request_body_has_an_example_and_every_answer_a_schema(api: Api) -> None:
    document = spec(api)
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                schema = _resolve(document, content.get("schema", {}))
                if not ({"example", "examples"} & (set(content) | set(schema))):
                    missing.append(f"{method} {path} body {media}: no example")
            for status, answer in operation["responses"].items():
                schemas = [c.get("schema") for c in answer.get("content", {}).values()]
                if status.startswith("2") and status != "204" and not any(schemas):
                    missing.append(f"{method} {path} {status}: no schema")
    assert missing == []


def test_every_example_is_valid_for_its_route() -> None:
    checked = 0
    routes = [r for m in (auth, batches, catalog, labels, ledger) for r in m.router.routes]
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        for param in route.dependant.body_params:
            for example in (param.field_info.openapi_examples or {}).values():
                _, errors = param.validate(example["value"], {}, loc=("body",))
                assert not errors, (route.path, errors)
                checked += 1
    assert checked >= 14
