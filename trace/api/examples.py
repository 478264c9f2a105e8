"""One example for every request body, shown in /docs (and checked against its model by the
tests): the Bắc Kạn demo's first product, its producer, rating and batch."""

from __future__ import annotations

from typing import Any

from fastapi import Body

_ADDRESS = {"province": "tỉnh Bắc Kạn", "district": "huyện Na Rì", "commune": "xã Côn Minh"}
PRODUCER = {
    "id": "htx-tai-hoan",
    "name": "HTX Tài Hoan",
    "type": "cooperative",
    "registration_no": "DEMO-4700000001",
    "contact": "htx@example.invalid",
    "address_certified": {**_ADDRESS, "line": "thôn Chè Cọ"},
    "address_current": {"province": "tỉnh Thái Nguyên", "commune": "xã Côn Minh"},
}
PRODUCT = {
    "id": "mien-dong-tai-hoan",
    "producer_id": "htx-tai-hoan",
    "name_vi": "Miến dong Tài Hoan",
    "name_en": "Tài Hoan arrowroot noodles",
    "product_set": "food.processed_cereals",
    "gtin": "8936012345674",
    "image_url": "https://example.com/mien-dong.jpg",
}
RATING = {
    "product_id": "mien-dong-tai-hoan",
    "score_hundredths": 9114,
    "level": "national",
    "issuing_body": "Bộ Nông nghiệp và Phát triển nông thôn",
    "decision_no": "DEMO-2890",
    "decision_date": "2024-06-30",
    "certificate_no": "DEMO-5S-0001",
    "issued_on": "2024-06-30",
    "evaluation_year": 2024,
}
BATCH = {
    "id": "mien-2026-001",
    "product_id": "mien-dong-tai-hoan",
    "lot": "L2601",
    "produced_on": "2026-01-04",
    "quantity": 1200000,
    "unit": "g",
    "origin": "thôn Chè Cọ, xã Côn Minh",
    "inputs": [],
}
EVENT = {"biz_step": "packing", "at": "2026-01-05T10:00:00Z", "place": "xã Côn Minh"}
INSPECTION = {"batch_id": "mien-2026-001", "result": "pass", "findings": "labels match the lot"}
RECALL = {"reason": "mould found in the lot"}
REVOKE = {"reason": "not re-evaluated after three years"}
KEY_CHANGE = {"reason": "the cooperative's laptop was lost"}
PRODUCER_KEY = {"key_id": "3f" * 32, "name": "htx-tai-hoan-offline"}
LABELS = {"count": 21, "format": "pdf", "ec": "M"}
LABEL_VOID = {"reason": "printed with the wrong lot"}
LOGIN = {"username": "htx-tai-hoan", "password": "a-long-enough-password", "token_name": "laptop"}
NEW_USER = {
    "username": "htx-tai-hoan",
    "password": "a-long-enough-password",
    "role": "producer",
    "producer_id": "htx-tai-hoan",
}
STATEMENT = {
    "kind": "batch.registered",
    "key_id": "3f" * 32,
    "issued_at": "2026-01-04T08:00:00Z",
    "body": BATCH,
    "sig": "base64 Ed25519 signature over the statement (ocop-trace sign prints it)",
}
STATEMENTS = {"statements": [STATEMENT], "serials": []}
PRODUCER_CHANGES = {
    "address_current": {"province": "tỉnh Thái Nguyên", "commune": "xã Côn Minh"},
    "contact": "htx.taihoan@example.invalid",
}
PRODUCT_CHANGES = {"name_en": "Tài Hoan arrowroot vermicelli"}
EPCIS_CAPTURE = {
    "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
    "type": "EPCISDocument",
    "schemaVersion": "2.0",
    "creationDate": "2026-01-05T02:00:00Z",
    "epcisBody": {
        "eventList": [
            {
                "type": "ObjectEvent",
                "eventTime": "2026-01-05T02:00:00Z",
                "eventTimeZoneOffset": "+07:00",
                "action": "OBSERVE",
                "bizStep": "shipping",
                "quantityList": [{"epcClass": "https://id.gs1.org/01/08936012345674/10/L2026-001"}],
            }
        ]
    },
}


def binary(*media_types: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 answer that is a file (a spreadsheet, a CSV), for `responses=`."""
    content = {media: {"schema": {"type": "string", "format": "binary"}} for media in media_types}
    return {200: {"content": content, "description": description}}


def body(example: dict[str, Any], summary: str = "example") -> Any:
    """A request body with its example, for `Annotated[Model, body(EXAMPLE)]`."""
    return Body(openapi_examples={"example": {"summary": summary, "value": example}})
