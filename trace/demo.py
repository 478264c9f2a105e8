"""A small demonstration ledger: real keys and signed statements, exported and verified."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import keys
from ledger.authority import KEY_REGISTERED
from ledger.bundle import export_bundle, store_records
from ledger.statement import Statement, sign_statement
from ledger.store import Receipt
from ledger.verifier import Report, verify
from ocop_trace.ledger_setup import ROOT_KEY_FILE, init_ledger, load_key, open_store
from ocop_trace.settings import Settings

COUNCIL_KINDS = [
    "key.registered",
    "key.revoked",
    "producer.registered",
    "product.registered",
    "rating.recorded",
    "rating.revoked",
]
PRODUCER_KINDS = ["batch.registered", "batch.event", "batch.recalled"]
INSPECTOR_KINDS = ["inspection.recorded"]
# Fixed times make every demo statement byte-identical on a re-run, so re-running the
# demo appends nothing new: the ledger recognises each signed statement it already holds.
T0 = "2026-01-05T08:00:00Z"


@dataclass(frozen=True)
class DemoResult:
    settings: Settings
    receipts: list[Receipt]
    bundle: Path
    report: Report


def _key(settings: Settings, filename: str) -> Ed25519PrivateKey:
    path = settings.key_dir / filename
    if not path.exists():
        keys.save_private_key(keys.generate(), path, settings.passphrase_bytes())
    return load_key(settings, filename)


def _grant(
    signer: Ed25519PrivateKey,
    key: Ed25519PrivateKey,
    role: str,
    name: str,
    kinds: list[str],
    subject: str,
    may_grant: list[str] | None = None,
) -> Statement:
    body = {
        "key_id": keys.key_id(keys.public_bytes(key)),
        "role": role,
        "name": name,
        "kinds": kinds,
        "may_grant": may_grant or [],
        "subject": subject,
    }
    return sign_statement(KEY_REGISTERED, body, signer, T0)


def demo_statements(settings: Settings) -> list[Statement]:
    root = load_key(settings, ROOT_KEY_FILE)
    council = _key(settings, "council-thai-nguyen.pem")
    producer = _key(settings, "producer-htx-tai-hoan.pem")
    producer_body: dict[str, Any] = {
        "producer_id": "htx-tai-hoan",
        "name": "HTX Tài Hoan",
        "type": "cooperative",
        "address": {
            "as_certified": {
                "province": "Bắc Kạn",
                "district": "Na Rì",
                "commune": "Côn Minh",
                "line": "thôn Chè Cọ",
            },
            "current": {"province": "Thái Nguyên", "commune": "Côn Minh"},
        },
    }
    return [
        _grant(
            root,
            council,
            "council",
            "council-thai-nguyen",
            COUNCIL_KINDS,
            "Thái Nguyên",
            PRODUCER_KINDS + INSPECTOR_KINDS,
        ),
        _grant(council, producer, "producer", "htx-tai-hoan", PRODUCER_KINDS, "htx-tai-hoan"),
        sign_statement("producer.registered", producer_body, council, T0),
        sign_statement(
            "product.registered",
            {
                "product_id": "mien-dong-tai-hoan",
                "producer_id": "htx-tai-hoan",
                "name_vi": "Miến dong Tài Hoan",
                "name_en": "Tài Hoan arrowroot noodles",
                "sector": "food",
                "product_set": "processed-from-cereals",
            },
            council,
            T0,
        ),
        sign_statement(
            "rating.recorded",
            {
                "product_id": "mien-dong-tai-hoan",
                "stars": 5,
                "score_hundredths": 9114,
                "criteria": "148/QĐ-TTg",
                "certificate": "DEMO-5S-0001",
                "issued_on": "2025-09-01",
                "expires_on": "2028-09-01",
            },
            council,
            T0,
        ),
        sign_statement(
            "batch.registered",
            {
                "batch_id": "mien-2026-001",
                "product_id": "mien-dong-tai-hoan",
                "lot": "DEMO-L2601",
                "produced_on": "2026-01-04",
                "quantity": 1200,
                "unit": "kg",
            },
            producer,
            "2026-01-05T09:00:00Z",
        ),
        sign_statement(
            "batch.event",
            {
                "batch_id": "mien-2026-001",
                "biz_step": "packing",
                "place": "xã Côn Minh",
                "at": "2026-01-05T10:00:00Z",
            },
            producer,
            "2026-01-05T10:05:00Z",
        ),
    ]


def run_demo(settings: Settings) -> DemoResult:
    init_ledger(settings)
    store = open_store(settings)
    receipts = store.append(demo_statements(settings))
    store.publish_checkpoint()
    bundle = settings.key_dir.parent / "demo-bundle.jsonl"
    export_bundle(store, bundle)
    report = verify(
        store_records(store),
        store.root_key_id,
        workers=1,
        expected_size=store.size(),
        origin=store.origin,
    )
    return DemoResult(settings, receipts, bundle, report)
