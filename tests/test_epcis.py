"""EPCIS 2.0 export: every document valid against GS1's schema, every eventID as the
independent reference implementation computes it, and events that stay the same."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import VECTORS
from epcis_event_hash_generator import hash_generator, json_to_py
from jsonschema import Draft7Validator, FormatChecker
from support import BATCH, PRODUCT, RATING, Api

from ocop_trace.epcis.event_hash import event_id, pre_hash, prefixes_of
from ocop_trace.epcis.export import write_ledger

EPCIS = VECTORS / "epcis"
EXAMPLES = sorted((EPCIS / "examples").glob("*.jsonld"))
VALIDATOR = Draft7Validator(
    json.loads((EPCIS / "EPCIS-JSON-Schema.json").read_text("utf-8")),
    format_checker=FormatChecker(),
)
PLAIN = {**PRODUCT, "id": "tra-hoa-vang", "gtin": "", "name_vi": "Trà hoa vàng"}


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(document)]


def reference_ids(document: dict[str, Any]) -> list[str]:
    """The eventIDs epcis-event-hash-generator computes for the document's events."""
    events = json_to_py.event_list_from_epcis_document_json(copy.deepcopy(document))
    return list(hash_generator.epcis_hashes_from_events(events))


def assert_valid_with_reference_ids(document: dict[str, Any]) -> list[dict[str, Any]]:
    assert schema_errors(document) == []
    events: list[dict[str, Any]] = document["epcisBody"]["eventList"]
    assert [e["eventID"] for e in events] == reference_ids(document)
    return events


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_standards_examples_validate_and_the_validator_sees_errors(path: Path) -> None:
    document = json.loads(path.read_text("utf-8"))
    assert schema_errors(document) == []
    broken = copy.deepcopy(document)
    broken["epcisBody"]["eventList"][0]["eventTimeZoneOffset"] = "+7"
    del broken["schemaVersion"]
    assert len(schema_errors(broken)) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_our_pre_hash_matches_the_reference_on_the_standards_examples(path: Path) -> None:
    document = json.loads(path.read_text("utf-8"))
    prefixes = prefixes_of(document["@context"])
    events = json_to_py.event_list_from_epcis_document_json(copy.deepcopy(document))
    theirs = hash_generator.derive_prehashes_from_events(events)
    for event, their in zip(document["epcisBody"]["eventList"], theirs, strict=True):
        if "sourceList" in event:
            # The reference puts destinationList before sourceList; the algorithm's order
            # (21 sourceList, 22 destinationList) is the other way round: ours follows it.
            source = event["sourceList"]
            moved = {k: v for k, v in event.items() if k != "sourceList"}
            ours = pre_hash(moved, prefixes) + pre_hash({"type": "", "sourceList": source}, {})
            assert sorted(ours.replace("eventType=", "")) == sorted(their.replace("eventType=", ""))
            assert pre_hash(event, prefixes).index("sourceList") < pre_hash(event, prefixes).index(
                "destinationList"
            )
        else:
            assert pre_hash(event, prefixes) == their


def test_the_event_hash_follows_the_rules_it_names() -> None:
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-01-05T17:00:00.5+07:00",
        "eventTimeZoneOffset": "+07:00",
        "quantityList": [
            {"epcClass": "https://x.example/01/8936012345674/10/L1", "quantity": 2.50}
        ],
        "action": "OBSERVE",
        "bizStep": "urn:epcglobal:cbv:bizstep:packing",
        "ex:b": " z ",
        "ex:a": 1,
    }
    text = pre_hash(event, {"ex": "https://ns.example/"})
    assert text == (
        "eventType=ObjectEventeventTime=2026-01-05T10:00:00.500ZeventTimeZoneOffset=+07:00"
        "quantityListquantityElementepcClass=https://id.gs1.org/01/08936012345674/10/L1"
        "quantity=2.5action=OBSERVEbizStep=https://ref.gs1.org/cbv/BizStep-packing"
        "{https://ns.example/}a=1{https://ns.example/}b=z"
    )
    assert event_id(event, {"ex": "https://ns.example/"}).startswith("ni:///sha-256;")
    assert event_id({**event, "eventID": "x", "recordTime": "2030-01-01T00:00:00Z"}, {}) != ""


def every_kind_of_event(api: Api) -> None:
    """Two products (with and without a GTIN), a rating, lineage, every step, a recall, an
    inspection and labels: every kind of entry the export reads."""
    api.post("/api/v1/products", PRODUCT, "council")
    api.post("/api/v1/products", PLAIN, "council")
    assert api.post("/api/v1/ratings", RATING, "council").status_code == 201
    rice = {**BATCH, "id": "rice-1", "product_id": "tra-hoa-vang", "lot": "R1", "unit": "kg"}
    assert api.post("/api/v1/batches", rice, "producer").status_code == 201
    made = {**BATCH, "inputs": ["rice-1"], "expires_on": "2027-01-04", "notes": "200 g packs"}
    assert api.post("/api/v1/batches", made, "producer").status_code == 201
    for n, step in enumerate(
        ("commissioning", "harvesting", "processing", "packing", "shipping", "receiving")
    ):
        event = {"biz_step": step, "at": f"2026-01-{5 + n:02d}T10:00:00Z", "place": "xã Côn Minh"}
        if n == 2:
            event["note"] = "sấy khô"
        answer = api.post(f"/api/v1/batches/{BATCH['id']}/events", event, "producer")
        assert answer.status_code == 201, answer.text
    inspection = {"batch_id": BATCH["id"], "result": "pass", "findings": "đạt"}
    assert api.post("/api/v1/inspections", inspection, "inspector").status_code == 201
    api.post(f"/api/v1/batches/{BATCH['id']}/labels", {"count": 2}, "producer")
    assert (
        api.post("/api/v1/batches/rice-1/recall", {"reason": "mốc"}, "producer").status_code == 201
    )


def test_every_kind_of_event_exports_valid_with_reference_ids(api: Api) -> None:
    every_kind_of_event(api)
    answer = api.client.get(f"/api/v1/batches/{BATCH['id']}/epcis")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/ld+json")
    events = assert_valid_with_reference_ids(answer.json())
    kinds = [(e["type"], e.get("action"), e.get("bizStep"), e.get("disposition")) for e in events]
    assert kinds[:2] == [
        ("ObjectEvent", "ADD", "commissioning", "active"),
        ("TransformationEvent", None, "commissioning", None),
    ]
    assert ("ObjectEvent", "OBSERVE", "urn:ocop-trace:bizstep:processing", None) in kinds
    assert ("ObjectEvent", "OBSERVE", "inspecting", "conformant") in kinds
    added, lineage = events[0], events[1]
    base = api.settings.public_url
    epc_class = f"{base}/01/08936012345674/10/L2601"
    assert added["quantityList"] == [{"epcClass": epc_class, "quantity": 1200000, "uom": "GRM"}]
    assert added["ilmd"]["cbvmda:lotNumber"] == "L2601"
    assert added["ilmd"]["cbvmda:bestBeforeDate"] == "2027-01-04"
    assert added["certificationInfo"] == [
        f"{base}/api/v1/products/mien-dong-tai-hoan/ratings#DEMO-5S-0001"
    ]
    assert lineage["inputQuantityList"] == [{"epcClass": f"{base}/b/rice-1"}]
    assert added["ocop:ledgerEntry"] == lineage["ocop:ledgerEntry"]
    index = added["ocop:ledgerEntry"]["ocop:index"]
    entry = api.client.get(f"/api/v1/entries/{index}").json()
    assert entry["entry_hash"] == added["ocop:ledgerEntry"]["ocop:hash"]
    assert entry["entry"]["statement"]["kind"] == "batch.registered"
    rice = assert_valid_with_reference_ids(api.client.get("/api/v1/batches/rice-1/epcis").json())
    assert rice[-1]["disposition"] == "recalled"
    assert rice[-1]["ocop:reason"] == "mốc"
    assert rice[0]["quantityList"][0]["uom"] == "KGM"
    product = api.client.get(f"/api/v1/products/{PRODUCT['id']}/epcis").json()
    assert assert_valid_with_reference_ids(product) == events
    out = io.StringIO()
    count = write_ledger(api.service.store, base, out)
    ledger = json.loads(out.getvalue())
    assert count == len(ledger["epcisBody"]["eventList"]) == len(events) + len(rice)
    assert_valid_with_reference_ids(ledger)


def test_events_keep_their_ids_when_the_product_changes_later(api: Api) -> None:
    every_kind_of_event(api)
    before = api.client.get("/api/v1/batches/rice-1/epcis").json()["epcisBody"]["eventList"]
    api.post("/api/v1/products/tra-hoa-vang/updates", {"gtin": "8936012345681"}, "council")
    api.post("/api/v1/products/tra-hoa-vang/updates", {"name_vi": "Trà mới"}, "council")
    after = api.client.get("/api/v1/batches/rice-1/epcis").json()["epcisBody"]["eventList"]
    assert after == before
    assert api.client.get("/api/v1/batches/nothing/epcis").status_code == 404
    assert api.client.get("/api/v1/products/nothing/epcis").status_code == 404


@pytest.mark.slow
def test_the_demo_ledger_exports_valid_with_reference_ids(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ocop_trace.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["demo", "--dir", str(tmp_path / "d")]).exit_code == 0
    out = tmp_path / "demo.jsonld"
    result = runner.invoke(
        app, ["export-epcis", "--out", str(out), "--db", f"sqlite:///{tmp_path / 'd' / 'trace.db'}"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text("utf-8"))
    events = assert_valid_with_reference_ids(document)
    assert len(events) > 100
    classes = json.dumps(events)
    assert "/01/02000000000015/10/" in classes  # the demo product given a GTIN
    assert "/01/09520000000011/10/" in classes  # the one registered with a GTIN
    assert "/b/tra-nu-voi-b1" in classes  # and those without one
