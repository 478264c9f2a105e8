"""Use cases: who may do what, signing with custodial keys, and appending to the ledger.

Every surface (JSON API, pages, staff app, command line) calls these; none writes to the
ledger or the projection on its own. Roles are checked here; what a signed statement may
do (ownership, the OCOP rules) is checked by the projection, inside the append.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, select

from ledger import keys
from ledger.authority import KEY_REGISTERED, KEY_REVOKED
from ledger.statement import Statement, sign_statement, utc_now
from ledger.store import Also, LedgerStore, Receipt, writing
from ocop_trace import accounts, label_repair, labels, text
from ocop_trace.accounts import Principal
from ocop_trace.custody import Custody
from ocop_trace.errors import (
    Conflict,
    Forbidden,
    NotAuthenticated,
    NotFound,
    Unavailable,
)
from ocop_trace.kinds import KINDS, Role
from ocop_trace.links import label_url
from ocop_trace.models import (
    BATCH,
    LABEL_SERIAL,
    LABEL_SET,
    PRODUCER,
    PRODUCT,
    BatchCreate,
    EventCreate,
    InspectionCreate,
    LabelIssue,
    ProducerChanges,
    ProducerCreate,
    ProductChanges,
    ProductCreate,
    RatingCreate,
)
from ocop_trace.ocop import today_in_vietnam
from ocop_trace.offline import sign_label_url
from ocop_trace.projection import Projector
from ocop_trace.reads import current_rating
from ocop_trace.serials import Serial, new_serial, parse_canonical, serial_set_commitment

COUNCIL_OWNER = "council"


def attach_projection(store: LedgerStore) -> LedgerStore:
    """The store keeps the projection, and indexes each entry by what it is about."""
    store.on_append = lambda conn, appended: Projector(conn).apply_all(appended)
    store.subject_of = KINDS.subject_of
    return store


def owner_of(role: Role, subject: str) -> str:
    """The custody owner name of a key: the council's, a producer's or an inspector's."""
    return COUNCIL_OWNER if role == "council" else f"{role}:{subject}"


@dataclass(frozen=True)
class IssuedLabels:
    """A label set just issued: its ledger receipt, serials and the labels to print."""

    receipt: Receipt
    serials: list[Serial]
    labels: list[labels.Label]


@dataclass
class TraceService:
    store: LedgerStore
    custody: Custody

    @property
    def engine(self) -> Engine:
        return self.store.engine

    # -- set-up -------------------------------------------------------------------------
    def ensure_council_key(self, root: Ed25519PrivateKey) -> None:
        """Give the service a council key registered by the root key: once, and again when
        this version declares kinds the held key may not sign or grant (a new key is
        registered beside it; the custody then signs with the newest)."""
        held = self.custody.key_for(COUNCIL_OWNER)
        if held is not None:
            grant = self.store.grants().get(keys.key_id(keys.public_bytes(held)))
            wanted = set(KINDS.signed_by("council"))
            grantable = set(KINDS.signed_by("producer") + KINDS.signed_by("inspector"))
            if grant is not None and wanted <= grant.kinds and grantable <= grant.may_grant:
                return
        council = keys.generate()
        registration = _registration(
            root,
            council,
            "council",
            "council",
            KINDS.signed_by("council"),
            "council",
            KINDS.signed_by("producer") + KINDS.signed_by("inspector"),
        )
        self._append([registration], also=self._keep(COUNCIL_OWNER, council))

    # -- signing --------------------------------------------------------------------------
    def _key(self, owner: str) -> Ed25519PrivateKey:
        key = self.custody.key_for(owner)
        if key is None and owner == COUNCIL_OWNER:
            raise Unavailable("the service holds no council key; run ocop-trace init")
        if key is None:
            raise Conflict(
                f"the service holds no signing key for {owner} (it was revoked): the council "
                "gives it a new one with POST /api/v1/producers/{id}/keys/rotate"
            )
        return key

    def _keep(self, owner: str, key: Ed25519PrivateKey) -> Also:
        """Store a new custodial key in the transaction of the entry that registers it, so
        a refused registration leaves no key behind (and a key is never unregistered)."""
        return lambda conn, _: self.custody.keep(conn, owner, key, utc_now())

    def _append(self, statements: Sequence[Statement], also: Also | None = None) -> list[Receipt]:
        return self.store.append(list(statements), also=also)

    def _signs(
        self, principal: Principal, role: Role, kind: str, body: dict[str, Any], **also: Any
    ) -> Receipt:
        """The principal's own key signs: the council's, its producer's or its own."""
        require_role(principal, role)
        subject = principal.producer_id if role == "producer" else principal.username
        key = self._key(owner_of(role, subject))
        with _for_a_body():
            return self._append([sign_statement(kind, body, key)], **also)[0]

    # -- council --------------------------------------------------------------------------
    def register_producer(self, principal: Principal, data: ProducerCreate) -> Receipt:
        """The producer, and a custodial signing key registered for it, in one append."""
        body = data.model_dump(exclude_none=True)
        with _for_a_body():
            return self.council_signs(principal, [("producer.registered", body)])[0]

    def council_signs(
        self, principal: Principal, items: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[Receipt]:
        """(kind, body) signed with the council's key and appended in one transaction, all
        or none; each producer registered gets a custodial signing key, registered right
        after it (so the receipts include those registrations) and kept in the same
        transaction."""
        require_role(principal, "council")
        council = self._key(COUNCIL_OWNER)
        statements, new_keys = [], []
        for kind, body in items:
            statements.append(sign_statement(kind, body, council))
            if kind == "producer.registered":
                key, producer = keys.generate(), str(body["id"])
                statements.append(
                    _registration(
                        council, key, "producer", producer, KINDS.signed_by("producer"), producer
                    )
                )
                new_keys.append((owner_of("producer", producer), key))

        def keep(conn: Connection, _: list[Receipt]) -> None:
            for owner, key in new_keys:
                self.custody.keep(conn, owner, key, utc_now())

        return self._append(statements, also=keep)

    def look_alike_producers(self, name: str) -> list[dict[str, Any]]:
        """Warnings for the council: registered producers whose name could pass for `name`
        (a shopper reads the name on the scan page, so a look-alike may be an impostor)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(PRODUCER.c.id, PRODUCER.c.name)).all()
        return [
            {
                "code": "confusable_name",
                "message": f"the name looks like that of producer {row.id} ({row.name}): "
                "check this is not an impostor before issuing its labels",
                "details": {"producer_id": row.id, "name": row.name},
            }
            for row in rows
            if text.confusable(name, row.name)
        ]

    def register_product(self, principal: Principal, data: ProductCreate) -> Receipt:
        body = data.model_dump(exclude_none=True)
        return self._signs(principal, "council", "product.registered", body)

    def update_producer(
        self, principal: Principal, producer_id: str, data: ProducerChanges
    ) -> Receipt:
        """Change a producer's name, addresses, contact, description or photo (council)."""
        body = {"producer_id": producer_id, **data.changes()}
        return self._signs(principal, "council", "producer.updated", body)

    def update_product(
        self, principal: Principal, product_id: str, data: ProductChanges
    ) -> Receipt:
        """Change a product's names, description, photo or GTIN (council)."""
        body = {"product_id": product_id, **data.changes()}
        return self._signs(principal, "council", "product.updated", body)

    def record_rating(self, principal: Principal, data: RatingCreate) -> Receipt:
        body = data.model_dump(exclude_none=True)
        return self._signs(principal, "council", "rating.recorded", body)

    def correct_rating(
        self, principal: Principal, data: RatingCreate, wrong_id: int, reason: str
    ) -> list[Receipt]:
        """A mistaken rating corrected: the right one recorded and the wrong one revoked, in
        one append (all or none), so the product is never shown with both or neither."""
        items = [
            ("rating.recorded", data.model_dump(exclude_none=True)),
            ("rating.revoked", {"rating_id": wrong_id, "reason": reason}),
        ]
        return self.council_signs(principal, items)

    def revoke_rating(self, principal: Principal, rating_id: int, reason: str) -> Receipt:
        body = {"rating_id": rating_id, "reason": reason}
        return self._signs(principal, "council", "rating.revoked", body)

    def register_producer_key(
        self, principal: Principal, producer_id: str, public_hex: str, name: str
    ) -> Receipt:
        """Register a key the producer holds itself, for statements it signs offline."""
        require_role(principal, "council")
        keys.public_key_from_id(public_hex)
        self._require_producer(producer_id)
        body = {
            "key_id": public_hex,
            "role": "producer",
            "name": name,
            "kinds": KINDS.signed_by("producer"),
            "may_grant": [],
            "subject": producer_id,
        }
        return self._signs(principal, "council", KEY_REGISTERED, body)

    def revoke_key(self, principal: Principal, key_id: str, reason: str) -> Receipt:
        """Signed by the council key that registered it (an older one, after a rotation);
        the service forgets the key's private half if it held it."""
        require_role(principal, "council")
        body = {"key_id": key_id, "reason": reason}
        grant = self.store.grants().get(key_id)
        signer = grant and self.custody.key_with_id(COUNCIL_OWNER, grant.registered_by)
        key = signer or self._key(COUNCIL_OWNER)
        forget: Also = lambda conn, _: self.custody.forget(conn, key_id)  # noqa: E731
        return self._append([sign_statement(KEY_REVOKED, body, key)], also=forget)[0]

    def rotate_producer_key(
        self, principal: Principal, producer_id: str, reason: str
    ) -> tuple[list[Receipt], str, str]:
        """A new custodial key for the producer, registered, and its old one revoked, in one
        append: no moment when it has two keys or none. Returns (receipts, new, old)."""
        require_role(principal, "council")
        self._require_producer(producer_id)
        owner = owner_of("producer", producer_id)
        old = self.custody.key_for(owner)  # None when it was revoked alone
        old_id = "" if old is None else keys.key_id(keys.public_bytes(old))
        council, new = self._key(COUNCIL_OWNER), keys.generate()
        statements = [
            _registration(
                council, new, "producer", producer_id, KINDS.signed_by("producer"), producer_id
            )
        ]
        if old_id:
            statements.append(
                sign_statement(KEY_REVOKED, {"key_id": old_id, "reason": reason}, council)
            )

        def swap(conn: Connection, receipts: list[Receipt]) -> None:
            self.custody.keep(conn, owner, new, utc_now())
            self.custody.forget(conn, old_id)

        receipts = self._append(statements, also=swap)
        return receipts, keys.key_id(keys.public_bytes(new)), old_id

    # -- accounts -------------------------------------------------------------------------
    def set_user_disabled(self, principal: Principal, username: str, disabled: bool) -> None:
        """Disable a user (its tokens are revoked with it) or enable it again."""
        require_role(principal, "council")
        with writing(self.engine) as conn:
            accounts.set_disabled(conn, username, disabled)

    def user_tokens(
        self, principal: Principal, username: str, ttl: timedelta
    ) -> list[accounts.TokenPublic]:
        """A user's tokens (the council's view, or the user's own)."""
        with self.engine.connect() as conn:
            return accounts.tokens_of(conn, self._self_or_council(conn, principal, username), ttl)

    def revoke_user_tokens(self, principal: Principal, username: str) -> int:
        with writing(self.engine) as conn:
            return accounts.revoke_all(conn, self._self_or_council(conn, principal, username))

    @staticmethod
    def _self_or_council(conn: Connection, principal: Principal, username: str) -> int:
        require_role(principal, *accounts.ROLES)
        if principal.role != "council" and principal.username != username:
            raise Forbidden("only the council may see or revoke another user's tokens")
        return accounts.user_id_of(conn, username)

    def create_user(
        self,
        principal: Principal,
        username: str,
        password: str,
        role: str,
        producer_id: str,
        must_change: bool = False,
    ) -> int:
        """A user; an inspector also gets a signing key, registered in the same transaction.
        `must_change`: the user sets its own password at first sign-in (the staff app)."""
        require_role(principal, "council")
        if producer_id:
            self._require_producer(producer_id)
        user, now = accounts.new_user(username, password, role, producer_id), utc_now()
        if role != "inspector":
            with writing(self.engine) as conn:
                return accounts.create_user(conn, user, now, must_change)
        created: list[int] = []
        key, owner = keys.generate(), owner_of("inspector", username)

        def add_user(conn: Connection, _: list[Receipt]) -> None:
            created.append(accounts.create_user(conn, user, now, must_change))
            self.custody.keep(conn, owner, key, now)

        council = self._key(COUNCIL_OWNER)
        kinds = KINDS.signed_by("inspector")
        self._append([_registration(council, key, "inspector", username, kinds, owner)], add_user)
        return created[0]

    def reset_password(self, principal: Principal, username: str) -> str:
        """A one-time code as the user's password (shown once to the council); the user
        must replace it at its next sign-in, and its tokens are revoked."""
        require_role(principal, "council")
        code = secrets.token_urlsafe(12)
        hashed = accounts.hash_password(code)
        with writing(self.engine) as conn:
            accounts.set_password(conn, accounts.user_id_of(conn, username), hashed, True)
        return code

    def change_password(self, principal: Principal, new_password: str, token_name: str) -> str:
        """The signed-in user's own new password: every token it had is revoked, and a new
        one (for the session that changed it) is returned."""
        require_role(principal, *accounts.ROLES)
        assert principal.user_id is not None
        hashed = accounts.hash_password(new_password)
        with writing(self.engine) as conn:
            accounts.set_password(conn, principal.user_id, hashed, False)
            return accounts.issue_token(conn, principal.user_id, token_name, utc_now())[1]

    # -- producers ------------------------------------------------------------------------
    def register_batch(self, principal: Principal, data: BatchCreate) -> Receipt:
        body = data.model_dump(exclude_none=True)
        return self._signs(principal, "producer", "batch.registered", body)

    def add_event(self, principal: Principal, batch_id: str, data: EventCreate) -> Receipt:
        body = {"batch_id": batch_id, **data.model_dump(exclude_none=True)}
        return self._signs(principal, "producer", "batch.event", body)

    def recall(self, principal: Principal, batch_id: str, reason: str) -> Receipt:
        body = {"batch_id": batch_id, "reason": reason}
        return self._signs(principal, "producer", "batch.recalled", body)

    def producer_key(self, producer_id: str) -> Ed25519PrivateKey:
        return self._key(owner_of("producer", producer_id))

    def batch_owner(self, batch_id: str) -> str:
        """The producer a batch belongs to (for operators acting on its behalf)."""
        with self.engine.connect() as conn:
            owner = conn.execute(select(BATCH.c.producer_id).where(BATCH.c.id == batch_id)).scalar()
        if owner is None:
            raise NotFound(f"no batch with id {batch_id!r}", field="batch_id")
        return str(owner)

    def issue_labels(
        self, principal: Principal, batch_id: str, request: LabelIssue, public_url: str
    ) -> IssuedLabels:
        """New unguessable serials for a batch and the labels that carry them.

        The ledger records only the serials' Merkle root; the serials themselves are stored
        in the same transaction, so no serial exists that the ledger does not commit to and
        no committed set lacks its serials.
        """
        require_role(principal, "producer")
        labels.check_sheet(**request.layout())  # before any serial is issued
        row, rating = self._label_facts(batch_id)
        serials = [new_serial() for _ in range(request.count)]
        body = {
            "batch_id": batch_id,
            "count": request.count,
            "commitment": serial_set_commitment(serials).hex(),
        }

        def keep_serials(conn: Connection, receipts: list[Receipt]) -> None:
            index = receipts[0].index
            label_repair.insert_serials(conn, [(s.canonical, batch_id, index) for s in serials])

        key = self.producer_key(principal.producer_id) if request.offline else None
        # Built before the append: a lot no link can carry leaves no unprinted serials.
        sheet = _sheet(row, rating, serials, public_url, key)
        receipt = self._signs(principal, "producer", "labels.issued", body, also=keep_serials)
        return IssuedLabels(receipt, serials, sheet)

    def void_labels(self, principal: Principal, set_index: int, reason: str) -> Receipt:
        """Withdraw a misprinted label set: its serials then scan as not registered. Only
        its batch's producer may (the projection checks the signer owns the batch); a set
        is voided once."""
        require_role(principal, "producer")
        body = {
            "label_set": set_index,
            "batch_id": self.label_set_batch(set_index),
            "reason": reason,
        }
        self._require_grant(principal.producer_id, "labels.voided")
        return self._signs(principal, "producer", "labels.voided", body)

    def _require_grant(self, producer_id: str, kind: str) -> None:
        """A producer key registered before this version declared `kind` may not sign it:
        said plainly, with the fix, rather than as the ledger's authority failure."""
        key = self.producer_key(producer_id)
        grant = self.store.grants().get(keys.key_id(keys.public_bytes(key)))
        if grant is not None and kind not in grant.kinds:
            raise Conflict(
                f"your signing key was registered before {kind} existed and may not sign it: "
                f"the council gives you a new key with POST /api/v1/producers/{producer_id}"
                "/keys/rotate (or ocop-trace key-rotate)"
            )

    def label_set_batch(self, set_index: int) -> str:
        """The batch a label set was issued for (for operators acting on its behalf)."""
        with self.engine.connect() as conn:
            batch_id = conn.execute(
                select(LABEL_SET.c.batch_id).where(LABEL_SET.c.id == set_index)
            ).scalar()
        if batch_id is None:
            raise NotFound(f"no label set {set_index}", field="label_set")
        return str(batch_id)

    def reprint_labels(
        self, principal: Principal, label_set_id: int, public_url: str
    ) -> list[labels.Label]:
        """The labels of a set issued earlier, again: the same serials, none new (its
        producer only; another's set is not found)."""
        require_role(principal, "producer")
        with self.engine.connect() as conn:
            found = conn.execute(
                select(LABEL_SERIAL.c.serial, LABEL_SERIAL.c.batch_id)
                .join(BATCH, BATCH.c.id == LABEL_SERIAL.c.batch_id)
                .where(
                    LABEL_SERIAL.c.label_set_id == label_set_id,
                    BATCH.c.producer_id == principal.producer_id,
                )
                .order_by(LABEL_SERIAL.c.serial)
            ).all()
            voided = conn.execute(
                select(LABEL_SET.c.voided_index).where(LABEL_SET.c.id == label_set_id)
            ).scalar()
        if not found:
            raise NotFound(f"no label set {label_set_id} of yours", field="label_set_id")
        if voided is not None:  # its codes no longer resolve: printing them again misleads
            raise Conflict(f"label set {label_set_id} is voided", field="label_set_id")
        row, rating = self._label_facts(found[0].batch_id)
        serials = [parse_canonical(r.serial) for r in found]
        return _sheet(row, rating, serials, public_url, None)

    def _label_facts(self, batch_id: str) -> tuple[Any, Any]:
        """What a batch's labels print: lot, GTIN, names, and the product's rating today."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    BATCH.c.lot,
                    PRODUCT.c.gtin,
                    PRODUCT.c.name_vi,
                    PRODUCT.c.id,
                    PRODUCER.c.name.label("producer"),
                )
                .join(PRODUCT, PRODUCT.c.id == BATCH.c.product_id)
                .join(PRODUCER, PRODUCER.c.id == PRODUCT.c.producer_id)
                .where(BATCH.c.id == batch_id)
            ).first()
            if row is None:
                raise NotFound(f"no batch with id {batch_id!r}", field="batch_id")
            return row, current_rating(conn, row.id, today_in_vietnam())

    # -- inspectors -----------------------------------------------------------------------
    def record_inspection(self, principal: Principal, data: InspectionCreate) -> Receipt:
        body = data.model_dump(exclude_none=True)
        return self._signs(principal, "inspector", "inspection.recorded", body)

    def sign_own(
        self, principal: Principal, items: Sequence[tuple[str, dict[str, Any], str]]
    ) -> list[Receipt]:
        """(kind, body, issued_at) signed with the caller's own key and appended, all or
        none. Signing is deterministic (Ed25519, the time given), so the same items sign
        to the same statements, which the ledger appends once (EPCIS capture relies on it)."""
        require_role(principal, "producer", "inspector")
        role: Role = "producer" if principal.role == "producer" else "inspector"
        subject = principal.producer_id if role == "producer" else principal.username
        key = self._key(owner_of(role, subject))
        return self._append([sign_statement(k, body, key, at) for k, body, at in items])

    # -- statements signed elsewhere ------------------------------------------------------
    def submit_signed(
        self,
        principal: Principal,
        statements: Iterable[Sequence[Statement]],
        on_chunk: Callable[[list[Receipt]], None] | None = None,
        serials: Sequence[Sequence[str]] = (),
    ) -> list[Receipt]:
        """Append statements signed offline, all or none, through the projection; a user may
        submit only their own keys' work. Statements come in chunks, held one at a time.

        A `labels.issued` statement commits to its serials by their Merkle root only, so
        it is accepted only with its serials (one list per label set in `serials`, matched
        by root), stored in the same transaction: no label set without its serials."""
        require_role(principal, *accounts.ROLES)
        label_sets: list[Statement] = []

        def noted(chunks: Iterable[Sequence[Statement]]) -> Iterable[Sequence[Statement]]:
            for chunk in chunks:
                label_sets.extend(s for s in chunk if s.kind == "labels.issued")
                yield chunk

        def keep(conn: Connection, _: list[Receipt]) -> None:
            label_repair.keep_offline_sets(conn, label_sets, serials)

        return self.store.append_stream(
            noted(self._own_work(principal, statements)), on_chunk=on_chunk, also=keep
        )

    def _own_work(
        self, principal: Principal, chunks: Iterable[Sequence[Statement]]
    ) -> Iterable[Sequence[Statement]]:
        if principal.role == "council":
            yield from chunks
            return
        mine = (
            owner_of("inspector", principal.username)
            if principal.role == "inspector"
            else principal.producer_id
        )
        position = 0
        for chunk in chunks:
            grants = self.store.grants()
            for statement in chunk:
                grant = grants.get(statement.key_id)
                if grant is None or grant.subject != mine:
                    error = Forbidden(f"statement {position} is not signed by one of your keys")
                    error.position, error.field = position, "key_id"
                    raise error
                position += 1
            yield chunk

    def _require_producer(self, producer_id: str) -> None:
        with self.engine.connect() as conn:
            if (
                conn.execute(select(PRODUCER.c.id).where(PRODUCER.c.id == producer_id)).first()
                is None
            ):
                raise NotFound(f"no producer with id {producer_id!r}", field="producer_id")


def _sheet(
    row: Any,
    rating: Any,
    serials: Sequence[Serial],
    public_url: str,
    key: Ed25519PrivateKey | None,
) -> list[labels.Label]:
    """The labels that carry `serials` (links signed with `key` for offline checking)."""
    urls = [label_url(public_url, row.gtin, row.lot, s.canonical) for s in serials]
    if key is not None:
        urls = [sign_label_url(url, key) for url in urls]
    stars = rating.stars if rating is not None and rating.current else 0
    domain = urlsplit(public_url).netloc
    return [
        labels.Label(url, row.name_vi, stars, row.lot, serial.human, row.producer, domain)
        for url, serial in zip(urls, serials, strict=True)
    ]


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


__all__ = ["IssuedLabels", "TraceService", "attach_projection", "owner_of", "require_role"]


@contextmanager
def _for_a_body() -> Iterator[None]:
    """A refusal of what the service signed for one body sent by the caller names the
    body's field ("id"), not the statement's place in the append ("statements[0].id")."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "position", None) is not None:
            exc.position = None  # type: ignore[attr-defined]
        raise
