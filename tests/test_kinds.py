"""The statement-kind registry: every kind has every part, and the parts agree."""

from __future__ import annotations

from typing import Any

import pytest
from support import BATCH, EVENT, PRODUCER, PRODUCT, RATING

from ledger.authority import KEY_REGISTERED, KEY_REVOKED
from ocop_trace.errors import InvalidInput
from ocop_trace.kinds import KINDS, LEDGER_KINDS, ROLES, Kind, Registry, Shown

# One valid body per kind: a kind declared without an example here fails the test below,
# so every new kind arrives with its tests.
EXAMPLES: dict[str, dict[str, Any]] = {
    "producer.registered": PRODUCER,
    "product.registered": PRODUCT,
    "producer.updated": {
        "producer_id": PRODUCER["id"],
        "name": "HTX Tài Hoan (mới)",
        "contact": "lienhe@example.invalid",
        "description": "Miến dong từ năm 2005",
        "image_url": "https://example.invalid/htx.jpg",
        "image_sha256": "ab" * 32,
        "address_certified": PRODUCER["address_certified"],
        "address_current": {"province": "Thái Nguyên", "commune": "Côn Minh", "line": "Chè Cọ"},
    },
    "product.updated": {
        "product_id": PRODUCT["id"],
        "name_vi": "Miến dong Tài Hoan đặc biệt",
        "name_en": "Special arrowroot noodles",
        "description": "200 g",
        "image_url": "https://example.invalid/mien.jpg",
        "image_sha256": "cd" * 32,
        "gtin": "8936012345681",
    },
    "rating.recorded": RATING,
    "rating.revoked": {"rating_id": 3, "reason": "mistaken score"},
    "batch.registered": {**BATCH, "inputs": ["in-b", "in-a", "in-b"]},
    "batch.event": {"batch_id": BATCH["id"], **EVENT},
    "batch.recalled": {"batch_id": BATCH["id"], "reason": "mould in the lot"},
    "labels.issued": {"batch_id": BATCH["id"], "count": 21, "commitment": "ab" * 32},
    "labels.voided": {"label_set": 7, "batch_id": BATCH["id"], "reason": "wrong lot printed"},
    "inspection.recorded": {"batch_id": BATCH["id"], "result": "pass", "findings": ""},
}


def test_every_kind_has_an_example_and_no_example_is_stale() -> None:
    assert set(EXAMPLES) == set(KINDS)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_has_every_part(name: str) -> None:
    kind = KINDS[name]
    assert kind.name == name
    assert kind.signer in ROLES
    assert callable(kind.project)
    assert isinstance(kind.shown, Shown), f"{name} must say what pages show of it"
    signed = kind.shown.read(kind.validate(EXAMPLES[name]))
    missing = [field for field in kind.shown.fields if field not in signed]
    assert not missing, f"{name} shows fields its body does not read as: {missing}"
    assert KINDS.for_part(kind.shown.part) is kind  # one kind per page part


@pytest.mark.parametrize("name", sorted(KINDS))
def test_bodies_are_read_strictly(name: str) -> None:
    kind = KINDS[name]
    body = dict(EXAMPLES[name])
    number = next((k for k, v in body.items() if type(v) is int), None)
    text = next(k for k, v in body.items() if type(v) is str)
    if number is not None:  # signed data holds integers as integers, never as text
        with pytest.raises(InvalidInput) as caught:
            kind.validate({**body, number: str(body[number])})
        assert caught.value.field == number
    with pytest.raises(InvalidInput) as caught:
        kind.validate({**body, text: 5})
    assert caught.value.field == text
    assert name in caught.value.message


def test_roles_sign_exactly_their_kinds_and_the_council_keeps_keys() -> None:
    signed = {role: set(KINDS.signed_by(role)) for role in ROLES}
    assert {KEY_REGISTERED, KEY_REVOKED} <= signed["council"]
    assert set(LEDGER_KINDS) == {KEY_REGISTERED, KEY_REVOKED}
    everything = set().union(*signed.values()) - set(LEDGER_KINDS)
    assert everything == set(KINDS)
    assert sum(len(kinds - set(LEDGER_KINDS)) for kinds in signed.values()) == len(KINDS)
    assert "batch.registered" in signed["producer"]
    assert "rating.recorded" not in signed["producer"]


def test_a_kind_cannot_be_declared_twice() -> None:
    registry = Registry()
    declare = registry.declare("x.made", "council", Kind, ("x", "id"), None)
    declare(lambda *_: None)
    with pytest.raises(ValueError, match="twice"):
        registry.declare("x.made", "council", Kind, ("x", "id"), None)(lambda *_: None)
    with pytest.raises(ValueError, match="twice"):
        registry.declare(KEY_REGISTERED, "council", Kind, ("x", "id"), None)(lambda *_: None)
