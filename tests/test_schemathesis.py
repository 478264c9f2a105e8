"""A bounded schemathesis run against /openapi.json: no 5xx, no answer that breaks the schema."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from support import CLI, PASSWORD, PRODUCER, PRODUCT, login

from ocop_trace.app import create_app
from ocop_trace.ledger_setup import init_ledger, open_service
from ocop_trace.settings import Settings

# About 25 operations x 12 examples x 2 callers: a few hundred requests in all.
EXAMPLES = 12


def _start() -> tuple[Any, str]:
    # Built at import: schemathesis turns the schema into one test per operation while
    # collecting, before any fixture could run.
    tmp = Path(tempfile.mkdtemp(prefix="ocop-schemathesis-"))
    app_settings = Settings(
        database_url=f"sqlite:///{tmp / 'trace.db'}", key_dir=tmp / "keys", checkpoint_interval=3600
    )
    init_ledger(app_settings)
    open_service(app_settings).create_user(CLI, "council", PASSWORD, "council", "")
    app = create_app(app_settings)
    client = TestClient(app)
    token = login(client, "council")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/producers", json=PRODUCER, headers=headers).status_code == 201
    assert client.post("/api/v1/products", json=PRODUCT, headers=headers).status_code == 201
    return app, token


APP, TOKEN = _start()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
CHECKS = [not_a_server_error, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_anonymous_callers(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_council_callers(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)
