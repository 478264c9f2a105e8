"""Use cases: who may do what, signing with custodial keys, and appending to the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, insert, select

from ledger import keys
from ledger.authority import KEY_REGISTERED, KEY_REVOKED, KeyGrant
from ledger.statement import Statement, sign_statement, utc_now
from ledger.store import LedgerStore, Receipt
from ocop_trace import accounts
from ocop_trace.accounts import Principal
from ocop_trace.custody import Custody
from ocop_trace.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    Unavailable,
)
from ocop_trace.models import (
    BatchCreate,
    EventCreate,
    InspectionCreate,
    LabelSerial,
    ProducerCreate,
    ProductCreate,
    RatingCreate,
)
from ocop_trace.projection import PRODUCER, Projector
from ocop_trace.serials import Serial, new_serial, serial_set_commitment

COUNCIL_KINDS = [
    KEY_REGISTERED,
    KEY_REVOKED,
    "producer.registered",
    "product.registered",
    "rating.recorded",
    "rating.revoked",
]
PRODUCER_KINDS = ["batch.registered", "batch.event", "batch.recalled", "labels.issued"]
INSPECTOR_KINDS = ["inspection.recorded"]
COUNCIL_OWNER = "council"


def _project(conn: Connection, appended: list[tuple[int, Statement, KeyGrant | None]]) -> None:
    Projector(conn).apply_all(appended)


def attach_projection(store: LedgerStore) -> LedgerStore:
    store.on_append = _project
    return store


@dataclass
class TraceService:
    store: LedgerStore
    custody: Custody

    @property
    def engine(self) -> Engine:
        return self.store.engine

    # -- set-up -------------------------------------------------------------------------
    def ensure_council_key(self, root: Ed25519PrivateKey) -> None:
        """Give the service a council key registered by the root key (once)."""
        if self.custody.key_for(COUNCIL_OWNER) is not None:
            return
        with self.engine.begin() as conn:
            council = self.custody.create(conn, COUNCIL_OWNER, utc_now())
        self.store.append(
            [
                _registration(
                    root,
                    council,
                    "council",
                    "council",
                    COUNCIL_KINDS,
                    "council",
                    PRODUCER_KINDS + INSPECTOR_KINDS,
                )
            ]
        )

    # -- signing --------------------------------------------------------------------------
    def _key(self, owner: str) -> Ed25519PrivateKey:
        key = self.custody.key_for(owner)
        if key is None:
            raise Unavailable(f"the service holds no signing key for {owner}; run ocop-trace init")
        return key

    def _append(self, statements: Sequence[Statement]) -> list[Receipt]:
        return self.store.append(list(statements))

    def _council_signs(self, principal: Principal, kind: str, body: dict[str, Any]) -> Receipt:
        require_role(principal, "council")
        return self._append([sign_statement(kind, body, self._key(COUNCIL_OWNER))])[0]

    # -- council --------------------------------------------------------------------------
    def register_producer(self, principal: Principal, data: ProducerCreate) -> Receipt:
        require_role(principal, "council")
        with self.engine.begin() as conn:
            if conn.execute(select(PRODUCER.c.id).where(PRODUCER.c.id == data.id)).first():
                raise Conflict(f"a producer with id {data.id!r} already exists", field="id")
            producer_key = self.custody.create(conn, f"producer:{data.id}", utc_now())
        council = self._key(COUNCIL_OWNER)
        statements = [
            sign_statement("producer.registered", data.model_dump(exclude_none=True), council),
            _registration(council, producer_key, "producer", data.id, PRODUCER_KINDS, data.id),
        ]
        return self._append(statements)[0]

    def register_product(self, principal: Principal, data: ProductCreate) -> Receipt:
        return self._council_signs(
            principal, "product.registered", data.model_dump(exclude_none=True)
        )

    def record_rating(self, principal: Principal, data: RatingCreate) -> Receipt:
        return self._council_signs(principal, "rating.recorded", data.model_dump(exclude_none=True))

    def revoke_rating(self, principal: Principal, rating_id: int, reason: str) -> Receipt:
        return self._council_signs(
            principal, "rating.revoked", {"rating_id": rating_id, "reason": reason}
        )

    def register_producer_key(
        self, principal: Principal, producer_id: str, public_hex: str, name: str
    ) -> Receipt:
        """Register a key the producer holds itself, for statements it signs offline."""
        require_role(principal, "council")
        keys.public_key_from_id(public_hex)
        council = self._key(COUNCIL_OWNER)
        body = {
            "key_id": public_hex,
            "role": "producer",
            "name": name,
            "kinds": PRODUCER_KINDS,
            "may_grant": [],
            "subject": producer_id,
        }
        self._require_producer(producer_id)
        return self._append([sign_statement(KEY_REGISTERED, body, council)])[0]

    def revoke_key(self, principal: Principal, key_id: str, reason: str) -> Receipt:
        return self._council_signs(principal, KEY_REVOKED, {"key_id": key_id, "reason": reason})

    def create_user(
        self, principal: Principal, username: str, password: str, role: str, producer_id: str
    ) -> int:
        require_role(principal, "council")
        if producer_id:
            self._require_producer(producer_id)
        now = utc_now()
        with self.engine.begin() as conn:
            user_id = accounts.create_user(conn, username, password, role, producer_id, now)
            inspector_key = (
                self.custody.create(conn, f"inspector:{user_id}", now)
                if role == "inspector"
                else None
            )
        if inspector_key is not None:
            council = self._key(COUNCIL_OWNER)
            self._append(
                [
                    _registration(
                        council,
                        inspector_key,
                        "inspector",
                        username,
                        INSPECTOR_KINDS,
                        f"inspector:{user_id}",
                    )
                ]
            )
        return user_id

    # -- producers ------------------------------------------------------------------------
    def _producer_signs(
        self, principal: Principal, producer_id: str, kind: str, body: dict[str, Any]
    ) -> Receipt:
        require_role(principal, "producer")
        if principal.producer_id != producer_id:
            raise Forbidden("you can act only for your own producer's products and batches")
        return self._append([sign_statement(kind, body, self._key(f"producer:{producer_id}"))])[0]

    def register_batch(self, principal: Principal, data: BatchCreate, producer_id: str) -> Receipt:
        return self._producer_signs(
            principal, producer_id, "batch.registered", data.model_dump(exclude_none=True)
        )

    def add_event(
        self, principal: Principal, batch_id: str, producer_id: str, data: EventCreate
    ) -> Receipt:
        return self._producer_signs(
            principal,
            producer_id,
            "batch.event",
            {"batch_id": batch_id, **data.model_dump(exclude_none=True)},
        )

    def recall(self, principal: Principal, batch_id: str, producer_id: str, reason: str) -> Receipt:
        return self._producer_signs(
            principal, producer_id, "batch.recalled", {"batch_id": batch_id, "reason": reason}
        )

    def producer_key(self, producer_id: str) -> Ed25519PrivateKey:
        return self._key(f"producer:{producer_id}")

    def issue_labels(
        self, principal: Principal, batch_id: str, producer_id: str, count: int
    ) -> tuple[Receipt, list[Serial]]:
        """New unguessable serials for a batch; the ledger records only their Merkle root."""
        serials = [new_serial() for _ in range(count)]
        commitment = serial_set_commitment(serials).hex()
        receipt = self._producer_signs(
            principal,
            producer_id,
            "labels.issued",
            {"batch_id": batch_id, "count": count, "commitment": commitment},
        )
        # After the append: if the process dies in between, the ledger holds a root for
        # serials nobody printed, which harms no one; the reverse would print unbacked codes.
        with self.engine.begin() as conn:
            conn.execute(
                insert(LABEL_SERIAL),
                [
                    {"serial": s.canonical, "batch_id": batch_id, "label_set_id": receipt.index}
                    for s in serials
                ],
            )
        return receipt, serials

    # -- inspectors -----------------------------------------------------------------------
    def record_inspection(self, principal: Principal, data: InspectionCreate) -> Receipt:
        require_role(principal, "inspector")
        key = self._key(f"inspector:{principal.user_id}")
        return self._append(
            [sign_statement("inspection.recorded", data.model_dump(exclude_none=True), key)]
        )[0]

    # -- statements signed elsewhere ------------------------------------------------------
    def submit_signed(self, principal: Principal, statements: Sequence[Statement]) -> list[Receipt]:
        """Append statements signed offline; a user may submit only their own keys' work."""
        if principal.role == "public":
            raise Forbidden("sign in to submit statements")
        if principal.role != "council":
            grants = self.store.grants()
            mine = (
                f"inspector:{principal.user_id}"
                if principal.role == "inspector"
                else (principal.producer_id)
            )
            for position, statement in enumerate(statements):
                grant = grants.get(statement.key_id)
                if grant is None or grant.subject != mine:
                    raise Forbidden(
                        f"statement {position} is not signed by one of your keys",
                        field=f"statements[{position}].key_id",
                    )
        return self._append(statements)

    def _require_producer(self, producer_id: str) -> None:
        with self.engine.connect() as conn:
            if (
                conn.execute(select(PRODUCER.c.id).where(PRODUCER.c.id == producer_id)).first()
                is None
            ):
                raise NotFound(f"no producer with id {producer_id!r}", field="producer_id")


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role == "public":
        raise NotAuthenticated("sign in first: send 'Authorization: Bearer <token>'")
    if principal.role not in roles:
        raise Forbidden(f"this needs the {' or '.join(roles)} role; you are {principal.role}")


def _registration(
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
    return sign_statement(KEY_REGISTERED, body, signer)


LABEL_SERIAL = LabelSerial.__table__  # type: ignore[attr-defined]

__all__ = ["InvalidInput", "TraceService", "attach_projection", "require_role"]
