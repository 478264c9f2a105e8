"""The statement kinds: for each, who signs it, its body, how it is projected, what pages show.

Adding a kind is one `declare` call here plus its tests; the use cases (service.py), the
projection (projection.py) and the scan page's evidence (evidence.py) read this registry,
and `tests/test_kinds.py` fails if a kind lacks any part.

    Kind
    ├── signer     the role whose key signs it (the ledger's key registry says which key)
    ├── body       the model its body must validate against (strictly: signed data)
    ├── about      what it is about ("batch", "batch_id"): the ledger indexes each entry
    │              under "batch:<id>", so a page finds every entry about a batch itself
    ├── project    applies it to the tables pages read, inside the append's transaction
    └── shown      what a page shows of it, read the way the projection reads it, or None
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import bindparam, insert, select, update

from ledger.authority import KEY_REGISTERED, KEY_REVOKED, KeyGrant
from ledger.statement import Statement
from ocop_trace import search
from ocop_trace.errors import Conflict, InvalidInput, NotFound, problem
from ocop_trace.models import (
    BATCH,
    BATCH_INPUT,
    EVENT,
    INSPECTION,
    LABEL_SET,
    PRODUCER,
    PRODUCT,
    RATING,
    AddressBase,
    BatchCreate,
    EventRecord,
    InspectionCreate,
    LabelSetRecord,
    LabelVoidRecord,
    ProducerCreate,
    ProducerUpdate,
    ProductCreate,
    ProductUpdate,
    RatingCreate,
    RatingRevocation,
    RecallRecord,
    address_columns,
    addresses_of,
)

if TYPE_CHECKING:
    from ocop_trace.projection import Projector

Role = Literal["council", "producer", "inspector"]
ROLES: tuple[Role, ...] = ("council", "producer", "inspector")
# Kinds the ledger itself keeps (its key registry); the council's key signs them.
LEDGER_KINDS = (KEY_REGISTERED, KEY_REVOKED)


@dataclass(frozen=True, slots=True)
class Shown:
    """A part of a page built from one kind of entry: the fields it shows, and how the
    entry's body reads once validated (derived values included) for the comparison.
    An update kind names the part it `updates`: its entries set some of that part's
    fields after the entry that created it (see `reads.field_entries`)."""

    part: str
    fields: tuple[str, ...]
    read: Callable[[Any], dict[str, Any]]
    updates: str | None = None


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    signer: Role
    body: type[BaseModel]
    about: tuple[str, str]  # (subject type, the body field that names it)
    project: Callable[[Projector, int, Any, KeyGrant], None]
    shown: Shown | None

    def subject(self, body: dict[str, Any]) -> str | None:
        value = body.get(self.about[1])
        if type(value) not in (str, int):
            return None  # a body the projection will refuse anyway
        return f"{self.about[0]}:{value}"[:200]

    def validate(self, body: dict[str, Any]) -> Any:
        """The body as its model, strictly (signed data holds integers and strings only);
        a body that does not fit is refused naming the field."""
        try:
            return self.body.model_validate(body, strict=True)
        except ValidationError as exc:
            field, message = problem(exc.errors()[0])
            raise InvalidInput(
                f"{self.name}: {field}: {message}" if field else f"{self.name}: {message}",
                field=field,
            ) from None


class Registry(Mapping[str, Kind]):
    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    def declare(
        self,
        name: str,
        signer: Role,
        body: type[BaseModel],
        about: tuple[str, str],
        shown: Shown | None,
    ) -> Callable[[Callable[[Projector, int, Any, KeyGrant], None]], Kind]:
        def register(project: Callable[[Projector, int, Any, KeyGrant], None]) -> Kind:
            if name in self._kinds or name in LEDGER_KINDS:
                raise ValueError(f"statement kind {name} is declared twice")
            kind = Kind(name, signer, body, about, project, shown)
            self._kinds[name] = kind
            return kind

        return register

    def __getitem__(self, name: str) -> Kind:
        return self._kinds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def signed_by(self, role: Role) -> list[str]:
        """The kinds a key of this role may sign (what its registration grants)."""
        kinds = [k.name for k in self._kinds.values() if k.signer == role]
        return [*LEDGER_KINDS, *kinds] if role == "council" else kinds

    def subject_of(self, statement: Statement) -> str | None:
        """The ledger's index key for an entry (LedgerStore.subject_of)."""
        kind = self._kinds.get(statement.kind)
        return None if kind is None else kind.subject(statement.body)

    def updater_of(self, part: str) -> Kind | None:
        """The kind whose entries update this part's fields, if there is one."""
        return next(
            (k for k in self._kinds.values() if k.shown is not None and k.shown.updates == part),
            None,
        )

    def for_part(self, part: str) -> Kind:
        for kind in self._kinds.values():
            if kind.shown is not None and kind.shown.part == part:
                return kind
        raise KeyError(part)


KINDS = Registry()


# -- the council -------------------------------------------------------------------------
def _read_producer(data: ProducerCreate) -> dict[str, Any]:
    signed = data.model_dump()
    signed["address_current"]["district"] = ""  # the reformed addresses have no district
    return signed


_PRODUCER_FIELDS = (
    "id",
    "name",
    "type",
    "registration_no",
    "contact",
    "description",
    "image_url",
    "image_sha256",
)


@KINDS.declare(
    "producer.registered",
    "council",
    ProducerCreate,
    ("producer", "id"),
    Shown("producer", (*_PRODUCER_FIELDS, "address_certified", "address_current"), _read_producer),
)
def _producer_registered(p: Projector, index: int, data: ProducerCreate, _: KeyGrant) -> None:
    p.refuse_existing(PRODUCER, data.id, "producer")
    p.conn.execute(
        insert(PRODUCER).values(
            **data.model_dump(include=set(_PRODUCER_FIELDS)),
            **address_columns(data.address_certified, data.address_current),
            entry_index=index,
        )
    )


@KINDS.declare(
    "product.registered",
    "council",
    ProductCreate,
    ("product", "id"),
    # Every field a page shows: the public product page shows them all.
    Shown(
        "product",
        (
            "id",
            "producer_id",
            "name_vi",
            "name_en",
            "product_set",
            "gtin",
            "description",
            "image_url",
            "image_sha256",
        ),
        lambda d: d.model_dump(),
    ),
)
def _product_registered(p: Projector, index: int, data: ProductCreate, _: KeyGrant) -> None:
    p.refuse_existing(PRODUCT, data.id, "product")
    p.require(PRODUCER, data.producer_id, "producer")
    p.conn.execute(
        insert(PRODUCT).values(**data.model_dump(), sector=data.sector, entry_index=index)
    )
    search.index_product(p.conn, data.id)


# Updates: the row takes the new values; `update_history` keeps what each entry changed and
# what the fields held before, so pages can show the history and compare each shown field
# with the entry that last set it.
def _read_producer_update(data: ProducerUpdate) -> dict[str, Any]:
    signed = data.changes()
    if "address_current" in signed:
        signed["address_current"]["district"] = ""  # as the registration reads it
    return signed


@KINDS.declare(
    "producer.updated",
    "council",
    ProducerUpdate,
    ("producer", "producer_id"),
    Shown(
        "producer_update",
        tuple(f for f in ProducerUpdate.model_fields if f != "producer_id"),
        _read_producer_update,
        updates="producer",
    ),
)
def _producer_updated(p: Projector, index: int, data: ProducerUpdate, _: KeyGrant) -> None:
    row = p.require(PRODUCER, data.producer_id, "producer")
    certified, current = addresses_of(row)
    held = {f: getattr(row, f) for f in _PRODUCER_FIELDS}
    held.update(address_certified=certified.model_dump(), address_current=current.model_dump())
    changes = {k: v for k, v in _read_producer_update(data).items() if held.get(k) != v}
    p.record_update(index, "producer", row.id, changes, {k: held[k] for k in changes})
    new = {**held, **changes}
    columns = {k: v for k, v in changes.items() if not k.startswith("address_")}
    if "address_certified" in changes or "address_current" in changes:
        columns.update(
            address_columns(
                AddressBase(**new["address_certified"]), AddressBase(**new["address_current"])
            )
        )
    p.conn.execute(update(PRODUCER).where(PRODUCER.c.id == row.id).values(**columns))
    search.index_producer(p.conn, row.id)


@KINDS.declare(
    "product.updated",
    "council",
    ProductUpdate,
    ("product", "product_id"),
    Shown(
        "product_update",
        tuple(f for f in ProductUpdate.model_fields if f != "product_id"),
        lambda d: d.changes(),
        updates="product",
    ),
)
def _product_updated(p: Projector, index: int, data: ProductUpdate, _: KeyGrant) -> None:
    row = p.require(PRODUCT, data.product_id, "product")
    changes = {k: v for k, v in data.changes().items() if getattr(row, k) != v}
    if "gtin" in changes:
        p.check_gtin_change(row)
    p.record_update(index, "product", row.id, changes, {k: getattr(row, k) for k in changes})
    p.conn.execute(update(PRODUCT).where(PRODUCT.c.id == row.id).values(**changes))
    search.index_product(p.conn, row.id)


@KINDS.declare(
    "rating.recorded",
    "council",
    RatingCreate,
    ("product", "product_id"),
    Shown(
        "rating",
        (
            "product_id",
            "score_hundredths",
            "stars",
            "level",
            "issuing_body",
            "decision_no",
            "certificate_no",
            "issued_on",
            "expires_on",
        ),
        lambda d: {**d.model_dump(), **d.derived()},
    ),
)
def _rating_recorded(p: Projector, index: int, data: RatingCreate, _: KeyGrant) -> None:
    p.require(PRODUCT, data.product_id, "product")
    p.conn.execute(
        insert(RATING).values(
            id=index, revoked_index=None, revoked_reason="", **data.model_dump(), **data.derived()
        )
    )


@KINDS.declare(
    "rating.revoked",
    "council",
    RatingRevocation,
    ("rating", "rating_id"),
    Shown("rating_revocation", ("rating_id", "reason"), lambda d: d.model_dump()),
)
def _rating_revoked(p: Projector, index: int, data: RatingRevocation, _: KeyGrant) -> None:
    row = p.conn.execute(
        select(RATING.c.revoked_index).where(RATING.c.id == data.rating_id)
    ).first()
    if row is None:
        raise NotFound(f"no rating {data.rating_id}", field="rating_id")
    if row.revoked_index is not None:
        raise Conflict(f"rating {data.rating_id} is already revoked", field="rating_id")
    p.conn.execute(
        update(RATING)
        .where(RATING.c.id == data.rating_id)
        .values(revoked_index=index, revoked_reason=data.reason)
    )


# -- producers ---------------------------------------------------------------------------
_BATCH_FIELDS = (
    "id",
    "product_id",
    "lot",
    "produced_on",
    "expires_on",
    "quantity",
    "unit",
    "origin",
    "inputs",
)


def _read_batch(data: BatchCreate) -> dict[str, Any]:
    signed = data.model_dump()
    signed["inputs"] = sorted(set(signed["inputs"]))  # pages list them sorted, once each
    return signed


def _batch_from_product() -> Any:
    """INSERT … SELECT of a new batch's row, its producer read from its product: a row
    only if the product exists and is the signer's, and neither the id nor the product's
    lot is taken (the rules `_batch_registered` checks, asked at once)."""
    names = [c.name for c in BATCH.columns if c.name != "producer_id"]
    id_taken = select(BATCH.c.id).where(BATCH.c.id == bindparam("id")).exists()
    lot_taken = (
        select(BATCH.c.id)
        .where(BATCH.c.product_id == bindparam("product_id"), BATCH.c.lot == bindparam("lot"))
        .exists()
    )
    # rowcount is kept for an INSERT only when asked (SQLAlchemy 2.0.28 and later).
    return (
        insert(BATCH)
        .from_select(
            [*names, "producer_id"],
            select(
                *(bindparam(name, type_=BATCH.c[name].type) for name in names),
                PRODUCT.c.producer_id,
            ).where(
                PRODUCT.c.id == bindparam("product_id"),
                PRODUCT.c.producer_id == bindparam("signer_subject"),
                ~id_taken,
                ~lot_taken,
            ),
        )
        .execution_options(preserve_rowcount=True)
    )


_BATCH_FROM_PRODUCT = _batch_from_product()


@KINDS.declare(
    "batch.registered",
    "producer",
    BatchCreate,
    ("batch", "id"),
    Shown("batch", _BATCH_FIELDS, _read_batch),
)
def _batch_registered(p: Projector, index: int, data: BatchCreate, signer: KeyGrant) -> None:
    # Under the ledger's head lock each round trip holds up every other append
    # (docs/performance.md): a batch made from nothing is inserted from its product's row
    # in one statement, which inserts nothing when a rule below is broken; then the
    # look-ups run to say which.
    if not data.inputs:
        row = {
            **data.model_dump(exclude={"inputs"}),
            "entry_index": index,
            "recalled_index": None,
            "recall_reason": "",
            "recall_source": "",
            "signer_subject": signer.subject,
        }
        if p.conn.execute(_BATCH_FROM_PRODUCT, row).rowcount == 1:
            return
    # The three look-ups in one statement; the helpers say what is wrong, in the order
    # the rules are checked.
    id_taken = select(BATCH.c.id).where(BATCH.c.id == data.id).exists()
    lot_taken = (
        select(BATCH.c.id)
        .where(BATCH.c.product_id == data.product_id, BATCH.c.lot == data.lot)
        .exists()
    )
    product = p.conn.execute(
        select(
            PRODUCT.c.producer_id, id_taken.label("id_taken"), lot_taken.label("lot_taken")
        ).where(PRODUCT.c.id == data.product_id)
    ).first()
    if product is None or product.id_taken:
        p.refuse_existing(BATCH, data.id, "batch")
        p.require(PRODUCT, data.product_id, "product")
    assert product is not None  # require refused it otherwise
    p.own(signer, product.producer_id, f"product {data.product_id}")
    if product.lot_taken:
        raise Conflict(f"lot {data.lot} is already used for product {data.product_id}", field="lot")
    recall_source, recall_reason, recalled_index = "", "", None
    for input_id in data.inputs:
        parent = p.require(BATCH, input_id, "input batch")
        if parent.recalled_index is not None and not recall_source:
            recall_source = parent.recall_source or parent.id
            recall_reason, recalled_index = parent.recall_reason, parent.recalled_index
    p.conn.execute(
        insert(BATCH).values(
            producer_id=product.producer_id,
            entry_index=index,
            recalled_index=recalled_index,
            recall_reason=recall_reason,
            recall_source=recall_source,
            **data.model_dump(exclude={"inputs"}),
        )
    )
    if data.inputs:
        p.conn.execute(
            insert(BATCH_INPUT),
            [{"batch_id": data.id, "input_id": i} for i in dict.fromkeys(data.inputs)],
        )


@KINDS.declare(
    "batch.event",
    "producer",
    EventRecord,
    ("batch", "batch_id"),
    Shown("event", ("batch_id", "biz_step", "at", "place"), lambda d: d.model_dump()),
)
def _batch_event(p: Projector, index: int, data: EventRecord, signer: KeyGrant) -> None:
    batch = p.require(BATCH, data.batch_id, "batch")
    p.own(signer, batch.producer_id, f"batch {batch.id}")
    p.conn.execute(insert(EVENT).values(id=index, actor_key_id=signer.key_id, **data.model_dump()))


@KINDS.declare(
    "batch.recalled",
    "producer",
    RecallRecord,
    ("batch", "batch_id"),
    Shown("recall", ("batch_id", "reason"), lambda d: d.model_dump()),
)
def _batch_recalled(p: Projector, index: int, data: RecallRecord, signer: KeyGrant) -> None:
    batch = p.require(BATCH, data.batch_id, "batch")
    p.own(signer, batch.producer_id, f"batch {batch.id}")
    if batch.recall_source == batch.id:
        raise Conflict(f"batch {batch.id} is already recalled", field="batch_id")
    # It and everything made from it, at any depth; a batch flagged by an earlier recall
    # upstream keeps that one (it is the first reason not to use it).
    p.conn.execute(
        update(BATCH)
        .where(BATCH.c.id == batch.id)
        .values(recalled_index=index, recall_reason=data.reason, recall_source=batch.id)
    )
    downstream = p.downstream(batch.id)
    if downstream:
        p.conn.execute(
            update(BATCH)
            .where(BATCH.c.id.in_(downstream), BATCH.c.recalled_index.is_(None))
            .values(recalled_index=index, recall_reason=data.reason, recall_source=batch.id)
        )


@KINDS.declare(
    "labels.issued",
    "producer",
    LabelSetRecord,
    ("batch", "batch_id"),
    Shown("labels", ("batch_id", "count", "commitment"), lambda d: d.model_dump()),
)
def _labels_issued(p: Projector, index: int, data: LabelSetRecord, signer: KeyGrant) -> None:
    batch = p.require(BATCH, data.batch_id, "batch")
    p.own(signer, batch.producer_id, f"batch {batch.id}")
    p.conn.execute(
        insert(LABEL_SET).values(
            id=index, batch_id=batch.id, count=data.count, commitment=data.commitment
        )
    )


def _read_void(data: LabelVoidRecord) -> dict[str, Any]:
    return data.model_dump()


@KINDS.declare(
    "labels.voided",
    "producer",
    LabelVoidRecord,
    # Indexed under its label set (as a revocation is under its rating): a scan of one of
    # the set's serials finds the void by the set's index alone.
    ("label_set", "label_set"),
    Shown("labels_void", ("label_set", "batch_id", "reason"), _read_void),
)
def _labels_voided(p: Projector, index: int, data: LabelVoidRecord, signer: KeyGrant) -> None:
    row = p.conn.execute(select(LABEL_SET).where(LABEL_SET.c.id == data.label_set)).first()
    if row is None:
        raise NotFound(f"no label set {data.label_set}", field="label_set")
    if row.batch_id != data.batch_id:
        raise InvalidInput(
            f"label set {data.label_set} is of batch {row.batch_id}, not {data.batch_id}",
            field="batch_id",
        )
    batch = p.require(BATCH, row.batch_id, "batch")
    p.own(signer, batch.producer_id, f"batch {batch.id}")
    if row.voided_index is not None:
        raise Conflict(f"label set {data.label_set} is already voided", field="label_set")
    p.conn.execute(
        update(LABEL_SET)
        .where(LABEL_SET.c.id == data.label_set)
        .values(voided_index=index, voided_reason=data.reason, voided_at=p.issued_at)
    )


# -- inspectors --------------------------------------------------------------------------
@KINDS.declare(
    "inspection.recorded",
    "inspector",
    InspectionCreate,
    ("batch", "batch_id"),
    Shown("inspection", ("batch_id", "result", "findings"), lambda d: d.model_dump()),
)
def _inspection_recorded(
    p: Projector, index: int, data: InspectionCreate, signer: KeyGrant
) -> None:
    p.require(BATCH, data.batch_id, "batch")
    p.conn.execute(
        insert(INSPECTION).values(id=index, inspector_key_id=signer.key_id, **data.model_dump())
    )


__all__ = ["KINDS", "LEDGER_KINDS", "ROLES", "Kind", "Registry", "Role", "Shown"]
