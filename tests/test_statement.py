"""Statements and entries: signing, shape checks, and the authority rules."""

from __future__ import annotations

import base64
import json

import pytest
from support import registration

from ledger import keys
from ledger.authority import KEY_REGISTERED, KEY_REVOKED, KeyRegistry
from ledger.canonical import canonical_bytes
from ledger.errors import AuthorityError, EncodingError, SignatureError
from ledger.statement import (
    STATEMENT_DOMAIN,
    make_entry,
    parse_entry,
    parse_statement,
    sign_statement,
)


def test_signature_covers_domain_prefix_and_canonical_body() -> None:
    key = keys.generate()
    statement = sign_statement("batch.registered", {"lot": "L1", "qty": 5}, key)
    statement.verify()
    message = STATEMENT_DOMAIN + canonical_bytes(statement.unsigned())
    assert keys.verify_signature(keys.public_bytes(key), statement.signature(), message)
    # Without the prefix the same signature must not verify: no cross-protocol replay.
    assert not keys.verify_signature(
        keys.public_bytes(key), statement.signature(), canonical_bytes(statement.unsigned())
    )


def test_changed_body_fails_signature() -> None:
    statement = sign_statement("batch.registered", {"lot": "L1"}, keys.generate())
    forged = parse_statement(json.dumps({**statement.to_json(), "body": {"lot": "L2"}}))
    with pytest.raises(SignatureError) as info:
        forged.verify()
    assert info.value.expected is not None
    assert info.value.found is not None


def test_statement_survives_any_json_layout() -> None:
    statement = sign_statement("batch.event", {"b": "Côn Minh", "a": 1}, keys.generate())
    relaid = json.dumps(statement.to_json(), indent=3, ensure_ascii=True)
    again = parse_statement(relaid)
    again.verify()
    assert again.canonical() == statement.canonical()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "Bad Kind"}, "kind is malformed"),
        ({"key_id": "abc"}, "key_id must be"),
        ({"issued_at": "yesterday"}, "issued_at must be a UTC timestamp"),
        ({"issued_at": "2026-02-30T00:00:00Z"}, "not a real date"),
        ({"body": [1]}, "body must be an object"),
        ({"sig": "AAAA"}, "sig must be a base64"),
        ({"sig": "é" * 88}, "sig must be a base64"),
        ({"extra": "x"}, "wrong fields"),
    ],
)
def test_statement_shape_errors(change: dict[str, object], message: str) -> None:
    statement = sign_statement("batch.event", {"a": 1}, keys.generate()).to_json()
    with pytest.raises(EncodingError, match=message):
        parse_statement(json.dumps({**statement, **change}))


def test_entry_round_trip_and_hash() -> None:
    statement = sign_statement("batch.event", {"a": 1}, keys.generate())
    entry = make_entry(7, "00" * 32, "2026-01-01T00:00:00Z", statement)
    parsed = parse_entry(entry.data)
    assert parsed == entry
    assert parsed.hash == entry.hash
    assert len(entry.hash) == 32


def test_registry_rules() -> None:
    root, council, producer = keys.generate(), keys.generate(), keys.generate()
    root_id = keys.key_id(keys.public_bytes(root))
    registry = KeyRegistry(root_id)

    council_kinds = [KEY_REGISTERED, "rating.recorded"]
    registry.check_and_apply(
        registration(root, council, "council", council_kinds, may_grant=["batch.registered"]), 0
    )
    # The council may hand out batch kinds without being able to sign batches itself...
    registry.check(registration(council, producer, "producer", ["batch.registered"]), 1)
    with pytest.raises(AuthorityError, match="no authority"):
        registry.check(sign_statement("batch.registered", {}, council), 1)
    # ...but nothing beyond what its own registration lets it grant.
    for kinds, may_grant in ((["rating.recorded"], []), ([], ["key.registered"])):
        with pytest.raises(AuthorityError, match="cannot hand out") as info:
            registry.check(
                registration(council, producer, "producer", kinds, may_grant=may_grant), 1
            )
        assert info.value.found == sorted(kinds + may_grant)
    # The root key signs only key statements.
    with pytest.raises(AuthorityError, match="no authority"):
        registry.check(sign_statement("rating.recorded", {}, root), 1)
    with pytest.raises(AuthorityError, match="unregistered"):
        registry.check(sign_statement("rating.recorded", {}, producer), 1)
    rating = sign_statement("rating.recorded", {"stars": 4}, council)
    registry.check(rating, 1)
    council_id = keys.key_id(keys.public_bytes(council))
    registry.check_and_apply(sign_statement(KEY_REVOKED, {"key_id": council_id}, root), 1)
    with pytest.raises(AuthorityError, match="revoked") as info:
        registry.check(rating, 2)
    assert info.value.index == 2
    assert "revoked at entry 1" in str(info.value.found)


def test_signature_bytes_are_base64() -> None:
    statement = sign_statement("x.y", {}, keys.generate())
    assert len(base64.b64decode(statement.sig)) == 64
