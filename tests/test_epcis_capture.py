"""EPCIS capture: round trip into a fresh ledger, once only, all or none, errors per event."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from conftest import open_api
from support import BATCH, PRODUCT, RATING, Api
from test_epcis import PLAIN, assert_valid_with_reference_ids, every_kind_of_event

CAPTURE = "/api/v1/epcis/capture"


def post(api: Api, document: Any, role: str | None = "producer") -> Any:
    return api.post(CAPTURE, document, role)


def comparable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events without the ledger reference and what depends on it (the eventID)."""
    return [
        {k: v for k, v in e.items() if k not in ("eventID", "ocop:ledgerEntry")} for e in events
    ]


def fresh_ledger(tmp_path: Path, url: str) -> Api:
    """A second ledger with the same catalogue (council data) and the input batch."""
    other = open_api(url, tmp_path / "keys2")
    assert other.post("/api/v1/products", PRODUCT, "council").status_code == 201
    assert other.post("/api/v1/products", PLAIN, "council").status_code == 201
    assert other.post("/api/v1/ratings", RATING, "council").status_code == 201
    return other


def test_a_batch_round_trips_through_a_fresh_ledger(api: Api, tmp_path: Path) -> None:
    every_kind_of_event(api)
    rice = api.client.get("/api/v1/batches/rice-1/epcis").json()
    exported = api.client.get(f"/api/v1/batches/{BATCH['id']}/epcis").json()
    other = fresh_ledger(tmp_path, f"sqlite:///{tmp_path / 'other.db'}")
    try:
        first = post(other, rice)
        assert first.status_code == 201, first.text
        without_inspection = copy.deepcopy(exported)
        events = without_inspection["epcisBody"]["eventList"]
        inspections = [e for e in events if "ocop:inspectionResult" in e]
        events[:] = [e for e in events if "ocop:inspectionResult" not in e]
        answer = post(other, without_inspection)
        assert answer.status_code == 201, answer.text
        result = answer.json()
        assert result["appended"] == len(events) - 1  # the ADD and its lineage: one entry
        assert result["statements"][0]["events"] == [0, 1]
        inspected = copy.deepcopy(exported)
        inspected["epcisBody"]["eventList"] = inspections
        assert post(other, inspected, "producer").status_code == 422  # not a producer's
        assert post(other, inspected, "inspector").status_code == 201
        again = other.client.get(f"/api/v1/batches/{BATCH['id']}/epcis").json()
        assert comparable(assert_valid_with_reference_ids(again)) == comparable(
            exported["epcisBody"]["eventList"]
        )
        back = other.client.get("/api/v1/batches/rice-1/epcis").json()
        assert comparable(back["epcisBody"]["eventList"]) == comparable(
            rice["epcisBody"]["eventList"]
        )
        # The same document again: appended once, the second time nothing is added.
        size = other.service.store.size()
        repeat = post(other, without_inspection).json()
        assert repeat["appended"] == 0
        assert repeat["duplicates"] == len(repeat["statements"])
        assert other.service.store.size() == size
    finally:
        other.client.close()
        other.service.engine.dispose()


def test_events_exported_from_this_ledger_are_already_here(api: Api) -> None:
    every_kind_of_event(api)
    exported = api.client.get("/api/v1/batches/rice-1/epcis").json()
    size = api.service.store.size()
    answer = post(api, exported)
    assert answer.status_code == 201, answer.text
    assert answer.json()["already_in_ledger"] == list(
        range(len(exported["epcisBody"]["eventList"]))
    )
    assert api.service.store.size() == size


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-01-06T00:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def packing(epc_class: str, **more: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-01-06T08:00:00+07:00",
        "eventTimeZoneOffset": "+07:00",
        "quantityList": [{"epcClass": epc_class}],
        "action": "OBSERVE",
        "bizStep": "packing",
        **more,
    }


def test_a_foreign_system_records_steps_by_gtin_and_lot(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    api.post("/api/v1/batches", BATCH, "producer")
    link = "https://their-erp.example/01/08936012345674/10/L2601"
    shipped = packing(link, bizStep="urn:epcglobal:cbv:bizstep:shipping")
    answer = post(api, document(packing(link), shipped))
    assert answer.status_code == 201, answer.text
    events = api.client.get(f"/api/v1/batches/{BATCH['id']}/events").json()["items"]
    assert [(e["biz_step"], e["at"]) for e in events] == [
        ("packing", "2026-01-06T01:00:00Z"),
        ("shipping", "2026-01-06T01:00:00Z"),
    ]


def test_every_refusal_is_listed_and_nothing_is_appended(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    api.post("/api/v1/batches", BATCH, "producer")
    good = packing("https://x.example/01/08936012345674/10/L2601")
    aggregation = {**good, "type": "AggregationEvent"}
    unknown_step = {**good, "bizStep": "dancing"}
    no_batch = packing("https://x.example/01/08936012345674/10/NOPE")
    fraction = {
        **good,
        "action": "ADD",
        "bizStep": "commissioning",
        "ilmd": {"cbvmda:lotNumber": "L9"},
        "quantityList": [
            {"epcClass": "https://x.example/01/08936012345674/10/L9", "quantity": 1.5}
        ],
    }
    no_time = {k: v for k, v in good.items() if k != "eventTime"}
    size = api.service.store.size()
    answer = post(api, document(good, aggregation, unknown_step, no_batch, fraction, no_time))
    assert answer.status_code == 422, answer.text
    errors = answer.json()["error"]["details"]["errors"]
    assert {(e["event"], e["field"]) for e in errors} >= {
        (1, "type"),
        (2, "bizStep"),
        (3, "epcClass"),
        (4, "quantityList.0.quantity"),
        (5, "eventTime"),
    }
    assert all(e["reason"] for e in errors)
    assert 0 not in {e["event"] for e in errors}
    assert api.service.store.size() == size


def test_capture_is_for_a_producer_its_own_batches_and_bounded(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    api.post("/api/v1/batches", BATCH, "producer")
    good = document(packing("https://x.example/01/08936012345674/10/L2601"))
    assert post(api, good, None).status_code == 401
    assert post(api, good, "council").status_code == 403
    api.post("/api/v1/producers", {**json.loads(json.dumps(_other())), "id": "htx-khac"}, "council")
    api.post(
        "/api/v1/products",
        {**PRODUCT, "id": "sp-khac", "gtin": "", "producer_id": "htx-khac"},
        "council",
    )
    theirs = {**BATCH, "id": "theirs-1", "product_id": "sp-khac"}
    api.service.register_batch(_principal("htx-khac"), _batch(theirs))
    refused = post(api, document(packing(f"{api.settings.public_url}/b/theirs-1")))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["details"]["errors"][0]["event"] == 0
    bad = api.client.post(
        CAPTURE,
        content=b"{not json",
        headers={**api.as_("producer"), "content-type": "application/json"},
    )
    assert bad.status_code == 422
    huge = api.client.post(
        CAPTURE,
        content=b" " * 5_000_001,
        headers={**api.as_("producer"), "content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert post(api, {"type": "EPCISDocument", "epcisBody": {"eventList": []}}).status_code == 422
    assert post(api, [1, 2]).status_code == 422


def _other() -> dict[str, Any]:
    from support import OTHER_PRODUCER

    return OTHER_PRODUCER


def _principal(producer_id: str) -> Any:
    from ocop_trace.accounts import Principal

    return Principal(None, "t", "producer", producer_id)


def _batch(values: dict[str, Any]) -> Any:
    from ocop_trace.models import BatchCreate

    return BatchCreate(**values)
