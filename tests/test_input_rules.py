"""Input refused at the edge, naming its field: ids, rating dates, hidden characters, links."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import Any

from support import BATCH, OTHER_PRODUCER, PRODUCER, PRODUCT, RATING, Api
from test_api import assert_error

from ledger import keys
from ledger.statement import sign_statement
from ocop_trace.ocop import today_in_vietnam


def refused(answer: Any, field: str) -> str:
    error = assert_error(answer, 422, "invalid_input")
    assert error["field"] == field, error
    return str(error["message"])


def test_ids_must_be_lower_case_ascii_slugs(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    size = api.service.store.size()
    for bad in ("lô 1", "Mien-1", "a b c", "x", "mien\n1", "../etc"):
        refused(api.post("/api/v1/batches", {**BATCH, "id": bad}, "producer"), "id")
        refused(api.post("/api/v1/products", {**PRODUCT, "id": bad}, "council"), "id")
        refused(api.post("/api/v1/batches", {**BATCH, "inputs": [bad]}, "producer"), "inputs.0")
    assert api.service.store.size() == size, "a refused id reached the ledger"


def test_ids_in_paths_are_checked_before_anything_runs(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    size = api.service.store.size()
    for method, path, body in (
        ("POST", "/api/v1/batches/lô 1/labels", {"count": 1}),
        (
            "POST",
            "/api/v1/batches/Lo-1/events",
            {"biz_step": "packing", "at": "2026-01-05T10:00:00Z"},
        ),
        ("GET", "/api/v1/producers/HTX", None),
        ("GET", "/api/v1/products/a b/ratings", None),
    ):
        answer = api.client.request(method, path, json=body, headers=api.as_("producer"))
        assert answer.status_code == 422, (path, answer.text)
    assert api.service.store.size() == size


def test_an_offline_statement_with_a_bad_id_is_refused_too(api: Api) -> None:
    key = keys.generate()
    public = keys.key_id(keys.public_bytes(key))
    api.post("/api/v1/products", PRODUCT, "council")
    api.post(
        "/api/v1/producers/htx-tai-hoan/keys", {"key_id": public, "name": "offline"}, "council"
    )
    statement = sign_statement("batch.registered", {**BATCH, "id": "lô 1"}, key).to_json()
    error = assert_error(
        api.post("/api/v1/statements", [statement], "producer"), 422, "invalid_input"
    )
    assert error["field"] == "statements[0].id"


def test_rating_rules_name_their_own_field(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    provincial = {**RATING, "level": "provincial", "score_hundredths": 4000}
    assert "certificate" in refused(
        api.post("/api/v1/ratings", provincial, "council"), "certificate_no"
    )
    district_late = {
        **RATING,
        "level": "district",
        "score_hundredths": 6000,
        "decision_date": "2025-08-01",
        "issued_on": "2025-08-01",
        "evaluation_year": 2025,
    }
    assert "District" in refused(api.post("/api/v1/ratings", district_late, "council"), "level")


def test_a_future_issue_date_or_a_late_evaluation_year_is_refused(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    tomorrow = (today_in_vietnam() + timedelta(days=1)).isoformat()
    message = refused(
        api.post("/api/v1/ratings", {**RATING, "issued_on": tomorrow}, "council"), "issued_on"
    )
    assert "future" in message
    refused(
        api.post(
            "/api/v1/ratings",
            {**RATING, "decision_date": tomorrow, "issued_on": tomorrow},
            "council",
        ),
        "decision_date",
    )
    late = {**RATING, "evaluation_year": 2025}  # decided 2024-06-30
    assert "evaluation_year" in refused(
        api.post("/api/v1/ratings", late, "council"), "evaluation_year"
    )
    assert api.post("/api/v1/ratings", RATING, "council").status_code == 201


HIDDEN = {
    "right-to-left override": "HTX Tài\u202eHoan",
    "isolate": "HTX \u2067Tài Hoan\u2069",
    "zero-width space": "HTX Tài\u200bHoan",
    "zero-width joiner": "HTX Tài\u200dHoan",
    "byte-order mark": "\ufeffHTX Tài Hoan",
    "control character": "HTX Tài\x07Hoan",
    "line break in a name": "HTX Tài\nHoan",
}


def test_names_hiding_characters_are_refused(api: Api) -> None:
    for what, name in HIDDEN.items():
        message = refused(
            api.post("/api/v1/producers", {**OTHER_PRODUCER, "name": name}, "council"), "name"
        )
        assert "invisible or control character" in message, what
        refused(api.post("/api/v1/products", {**PRODUCT, "name_vi": name}, "council"), "name_vi")


def test_text_is_stored_nfc_and_notes_keep_their_lines(api: Api) -> None:
    decomposed = unicodedata.normalize("NFD", "Miến dong Tài Hoan")
    assert decomposed != "Miến dong Tài Hoan"
    product = {**PRODUCT, "name_vi": decomposed, "description": "Dòng 1\nDòng 2"}
    assert api.post("/api/v1/products", product, "council").status_code == 201
    stored = api.client.get("/api/v1/products/mien-dong-tai-hoan").json()
    assert stored["name_vi"] == "Miến dong Tài Hoan"
    assert stored["description"] == "Dòng 1\nDòng 2"


def test_image_url_must_be_https(api: Api) -> None:
    for url in (
        "javascript:alert(1)",
        "http://tracker.example/pixel.png",
        "data:image/png;base64,AAAA",
        "https://user:pw@example.com/a.png",
        "//example.com/a.png",
        "https:///a.png",
    ):
        refused(api.post("/api/v1/products", {**PRODUCT, "image_url": url}, "council"), "image_url")
    url = "https://example.com/mien.png"
    assert api.post("/api/v1/products", {**PRODUCT, "image_url": url}, "council").status_code == 201
    assert api.client.get("/api/v1/products/mien-dong-tai-hoan").json()["image_url"] == url


LOOK_ALIKES = (
    "HTX Tai Hoan",  # without its diacritics
    "htx tài  hoan",  # case and spacing
    "HTX T\u0430i Hoan",  # Cyrillic а for Latin a
    "HTX Tài H0an",  # digit zero for O
)


def test_the_council_is_warned_of_a_confusable_producer_name(api: Api) -> None:
    for number, name in enumerate(LOOK_ALIKES):
        body = {**OTHER_PRODUCER, "id": f"look-alike-{number}", "name": name}
        answer = api.post("/api/v1/producers", body, "council")
        assert answer.status_code == 201, answer.text  # a warning, not a refusal
        warnings = answer.json()["warnings"]
        assert warnings[0]["code"] == "confusable_name"
        assert warnings[0]["details"]["producer_id"] == PRODUCER["id"], name
        assert PRODUCER["name"] in warnings[0]["message"]
    answer = api.post("/api/v1/producers", OTHER_PRODUCER, "council")
    assert answer.status_code == 201
    assert answer.json()["warnings"] == []
