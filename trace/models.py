"""Projection tables (rebuilt from the ledger) and the API's model family for each entity.

Per entity: `XBase` holds the fields a statement body carries, `XCreate` is what a client
sends, `X` is the table (a projection of ledger entries, keyed by the ids the statements
name or by entry index), `XPublic` is what the API returns. Nothing here is a secret.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import StringConstraints, field_validator, model_validator
from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from ocop_trace import ocop, text
from ocop_trace.digital_link import check_lot, is_valid_gtin

SLUG = r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"
SLUG_RE = re.compile(SLUG)
# An id: lower-case ASCII letters, digits and '-', 3-64 characters. (SQLModel's `regex`
# argument is silently ignored under Pydantic 2, so the pattern goes to Pydantic itself.)
Slug = Annotated[str, StringConstraints(pattern=SLUG, max_length=64)]


def slug_field(**kwargs: Any) -> Any:
    return Field(schema_extra={"pattern": SLUG}, max_length=64, **kwargs)


MAX_INDEX = 2**53 - 1  # ledger indices and ids in paths: what a JSON number holds exactly
MAX_LABELS = 10_000  # labels issued in one set
MAX_VOID_REASON = 200  # why a label set is voided: one line beside each code it withdraws
MAX_RECALL_REASON = 500  # characters in a recall's reason


def _check_date(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field} must be a date written YYYY-MM-DD") from None
    if len(value) != 10:
        raise ValueError(f"{field} must be a date written YYYY-MM-DD")
    return value


# -- producers ---------------------------------------------------------------------------
class AddressBase(SQLModel):
    province: str = Field(min_length=1, max_length=100)
    district: str = Field(default="", max_length=100)
    commune: str = Field(default="", max_length=100)
    line: str = Field(default="", max_length=200)

    _text = field_validator("province", "district", "commune", "line")(text.line)


SHA256_HEX = r"^([0-9a-f]{64})?$"


def _check_image(url: str, sha256: str) -> None:
    """A photo is its URL and the SHA-256 of its bytes, given together (or both empty)."""
    if bool(url) != bool(sha256):
        raise ValueError("image_url and image_sha256 are given together, or both left empty")
    if url and not url.startswith(("https://", "http://")):
        raise ValueError("image_url must be an http(s) URL")


class ProducerBase(SQLModel):
    name: str = Field(min_length=2, max_length=200)
    type: str = Field(description="enterprise, cooperative, cooperative_group or household")
    registration_no: str = Field(default="", max_length=50)
    contact: str = Field(default="", max_length=200, description="The business's public contact")
    description: str = Field(default="", max_length=4000)
    image_url: str = Field(default="", max_length=500, description="A photo of the producer")
    image_sha256: str = Field(
        default="", schema_extra={"pattern": SHA256_HEX}, description="SHA-256 of the photo"
    )

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in ocop.PRODUCER_TYPES:
            raise ValueError(f"type must be one of {', '.join(sorted(ocop.PRODUCER_TYPES))}")
        return value

    _text = field_validator("name", "registration_no", "contact")(text.line)


class ProducerCreate(ProducerBase):
    id: str = slug_field(description="Stable id, lower-case letters, digits and '-'")
    address_certified: AddressBase = Field(description="As printed on the certificate; kept")
    address_current: AddressBase = Field(description="After the 1 Jul 2025 reform (no district)")

    @model_validator(mode="after")
    def _image(self) -> ProducerCreate:
        _check_image(self.image_url, self.image_sha256)
        return self


class Producer(ProducerBase, table=True):
    """A producer's row: its two addresses flattened into columns, `certified_*` and
    `current_*` (see `address_columns` and `addresses_of`, the two directions)."""

    id: str = Field(primary_key=True, max_length=64)
    certified_province: str
    certified_district: str
    certified_commune: str
    certified_line: str
    current_province: str
    current_commune: str
    current_line: str
    entry_index: int = Field(sa_column=Column(BigInteger, nullable=False))


_ADDRESS_PARTS = {
    "certified": ("province", "district", "commune", "line"),
    "current": ("province", "commune", "line"),
}  # reformed: no district


def address_columns(certified: AddressBase, current: AddressBase) -> dict[str, str]:
    """A producer's addresses as its row's columns."""
    given = {"certified": certified, "current": current}
    return {
        f"{which}_{part}": getattr(given[which], part)
        for which, parts in _ADDRESS_PARTS.items()
        for part in parts
    }


def addresses_of(row: Any) -> tuple[AddressBase, AddressBase]:
    """A producer row's addresses: as certified, and current."""
    certified, current = (
        AddressBase.model_construct(**{part: getattr(row, f"{which}_{part}") for part in parts})
        for which, parts in _ADDRESS_PARTS.items()
    )
    return certified, current


class ProducerPublic(ProducerBase):
    id: str
    address_certified: AddressBase
    address_current: AddressBase
    entry_index: int


# -- products ----------------------------------------------------------------------------
class ProductBase(SQLModel):
    name_vi: str = Field(min_length=2, max_length=200)
    name_en: str = Field(default="", max_length=200)
    product_set: str = Field(description="OCOP product set code, e.g. food.processed_cereals")
    gtin: str = Field(default="", max_length=14, description="GTIN-8/12/13/14 with check digit")
    description: str = Field(default="", max_length=4000)
    image_url: str = Field(default="", max_length=500, description="An https:// link, or empty")
    image_sha256: str = Field(
        default="", schema_extra={"pattern": SHA256_HEX}, description="SHA-256 of the image"
    )

    _text = field_validator("name_vi", "name_en")(text.line)
    _prose = field_validator("description")(text.prose)
    _https = field_validator("image_url")(text.https_url)

    @field_validator("product_set")
    @classmethod
    def _known_set(cls, value: str) -> str:
        if value not in ocop.PRODUCT_SETS:
            raise ValueError("product_set must be one of the 26 OCOP product set codes")
        return value

    @field_validator("gtin")
    @classmethod
    def _gtin(cls, value: str) -> str:
        if value and not is_valid_gtin(value):
            raise ValueError("gtin must be 8, 12, 13 or 14 digits with a correct check digit")
        return value.zfill(14) if value else value


class ProductCreate(ProductBase):
    id: str = slug_field()
    producer_id: str = slug_field()

    @property
    def sector(self) -> str:
        return ocop.sector_of(self.product_set)

    @model_validator(mode="after")
    def _image(self) -> ProductCreate:
        # Registered before photos had a hash: a URL alone is still read (old entries).
        if self.image_sha256:
            _check_image(self.image_url, self.image_sha256)
        return self


class Product(ProductBase, table=True):
    __table_args__ = (Index("ix_product_name_vi", "name_vi", "id"),)  # the catalogue's order
    id: str = Field(primary_key=True, max_length=64)
    producer_id: str = Field(index=True, max_length=64)
    sector: str = Field(max_length=32)
    entry_index: int = Field(sa_column=Column(BigInteger, nullable=False))


class ProductPublic(ProductBase):
    id: str
    producer_id: str
    sector: str
    entry_index: int


# -- updates: what a producer.updated or product.updated statement may change ----------
class _Changes(SQLModel):
    """Every field optional; at least one given; a photo's URL and SHA-256 come together."""

    description: str | None = Field(default=None, max_length=4000)
    image_url: str | None = Field(default=None, max_length=500)
    image_sha256: str | None = Field(default=None, schema_extra={"pattern": SHA256_HEX})

    def changes(self) -> dict[str, Any]:
        """The fields this update sets, as signed (ids left out)."""
        return self.model_dump(exclude_none=True, exclude={"producer_id", "product_id"})

    @model_validator(mode="after")
    def _some_change(self) -> _Changes:
        if not self.changes():
            raise ValueError("an update changes at least one field")
        if (self.image_url is None) != (self.image_sha256 is None):
            raise ValueError("image_url and image_sha256 are changed together")
        if self.image_url is not None and self.image_sha256 is not None:
            _check_image(self.image_url, self.image_sha256)
        return self


class ProducerChanges(_Changes):
    """What the council may change about a producer (its type and number stay)."""

    name: str | None = Field(default=None, min_length=2, max_length=200)
    contact: str | None = Field(default=None, max_length=200)
    address_certified: AddressBase | None = None
    address_current: AddressBase | None = Field(
        default=None, description="The current address (after the 2025 reform: no district)"
    )


class ProducerUpdate(ProducerChanges):
    """The body of a producer.updated statement."""

    producer_id: str = slug_field()


class ProductChanges(_Changes):
    """What the council may change about a product. A GTIN changes only while no label
    carries it (labels issued with it would stop resolving)."""

    name_vi: str | None = Field(default=None, min_length=2, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    gtin: str | None = Field(default=None, max_length=14, description="'' removes it")

    @field_validator("gtin")
    @classmethod
    def _gtin(cls, value: str | None) -> str | None:
        if value and not is_valid_gtin(value):
            raise ValueError("gtin must be 8, 12, 13 or 14 digits with a correct check digit")
        return value.zfill(14) if value else value


class ProductUpdate(ProductChanges):
    """The body of a product.updated statement."""

    product_id: str = slug_field()


class UpdateRecord(SQLModel, table=True):
    """One update entry: what it changed (new values) and what those fields held before.
    A projection like the rest: rebuilt from the ledger and compared by `verify`."""

    __tablename__ = "update_history"
    entry_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    subject: str = Field(max_length=16, description="producer or product")
    subject_id: str = Field(max_length=64)
    issued_at: str = Field(max_length=40, description="When the council signed it")
    changes: str = Field(sa_column=Column(Text, nullable=False))  # JSON: field -> new value
    previous: str = Field(sa_column=Column(Text, nullable=False))  # JSON: field -> old value


Index(
    "ix_update_history_subject",
    UpdateRecord.__table__.c.subject,  # type: ignore[attr-defined]
    UpdateRecord.__table__.c.subject_id,  # type: ignore[attr-defined]
)


class HistoryItem(SQLModel):
    """One change in a producer's or product's history, for pages and the API."""

    entry_index: int
    issued_at: str
    changes: dict[str, Any]
    previous: dict[str, Any]


# -- ratings -----------------------------------------------------------------------------
class RatingBase(SQLModel):
    product_id: str = slug_field()
    score_hundredths: int = Field(ge=0, le=10000, description="Score x 100: 91.14 is 9114")
    level: str = Field(description="national, provincial or district")
    criteria: str = Field(default=ocop.CURRENT_CRITERIA, max_length=40)
    issuing_body: str = Field(min_length=2, max_length=200)
    decision_no: str = Field(min_length=1, max_length=60)
    decision_date: str
    certificate_no: str = Field(default="", max_length=60)
    issued_on: str
    evaluation_year: int = Field(ge=2018, le=2100)

    _text = field_validator("issuing_body", "decision_no", "certificate_no", "criteria")(text.line)

    @field_validator("decision_date", "issued_on")
    @classmethod
    def _dates(cls, value: str) -> str:
        return _check_date(value, "date") or value


class RatingCreate(RatingBase):
    def derived(self) -> dict[str, Any]:
        """What the rules make of it: stars (and potential 5★) and the expiry date."""
        band = ocop.stars_for_score(self.score_hundredths, self.level)
        expires = ocop.certificate_expiry(date.fromisoformat(self.issued_on))
        return {
            "stars": band.stars,
            "potential_five": band.potential_five,
            "expires_on": expires.isoformat(),
        }

    @model_validator(mode="after")
    def _rules(self) -> RatingCreate:
        # Each rule names the field to fix (RatingRuleError.field), which the error
        # answer reports instead of the whole body.
        band = ocop.stars_for_score(self.score_hundredths, self.level)
        decided = date.fromisoformat(self.decision_date)
        ocop.check_rating(band.stars, self.level, decided)
        today = ocop.today_in_vietnam().isoformat()
        for field in ("decision_date", "issued_on"):
            if getattr(self, field) > today:
                raise ocop.RatingRuleError(
                    f"{field} {getattr(self, field)} is in the future (today is {today} in "
                    "Vietnam)",
                    field=field,
                )
        if self.evaluation_year > decided.year:
            raise ocop.RatingRuleError(
                f"evaluation_year {self.evaluation_year} is after the decision "
                f"({self.decision_date}): a product is evaluated before it is rated",
                field="evaluation_year",
            )
        if band.stars >= 3 and not self.certificate_no:
            raise ocop.RatingRuleError(
                "a 3★ or better rating needs its certificate_no", field="certificate_no"
            )
        if band.stars < 3 and self.certificate_no:
            raise ocop.RatingRuleError(
                "1-2★ are evaluation results only: leave certificate_no empty",
                field="certificate_no",
            )
        return self


class Rating(RatingBase, table=True):
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    stars: int
    potential_five: bool = False
    expires_on: str
    revoked_index: int | None = Field(default=None, sa_column=Column(BigInteger))
    revoked_reason: str = ""


Index("ix_rating_product_id", Rating.__table__.c.product_id)  # type: ignore[attr-defined]


class RatingPublic(RatingBase):
    id: int
    stars: int
    potential_five: bool
    expires_on: str
    status: str
    revoked_index: int | None
    revoked_reason: str

    @property
    def current(self) -> bool:
        """Neither revoked nor expired: its stars may be shown as the product's own."""
        return self.status in (ocop.RatingStatus.VALID, ocop.RatingStatus.EXPIRING)


class RatingRevoke(SQLModel):
    reason: str = Field(min_length=3, max_length=500)

    _prose = field_validator("reason")(text.prose)


class RatingRevocation(RatingRevoke):
    """The body of a rating.revoked statement: the rating is the entry that recorded it."""

    rating_id: int = Field(ge=0, le=MAX_INDEX)


# -- batches -----------------------------------------------------------------------------
class BatchBase(SQLModel):
    product_id: str = slug_field()
    lot: str = Field(
        min_length=1,
        max_length=20,
        description="GS1 AI (10): letters, digits and !\"%&'()*+,-./:;<=>?_ (GS1 CSET 82)",
    )
    produced_on: str
    expires_on: str | None = None
    quantity: int = Field(ge=0, le=10**12, description="In base units, e.g. grams or items")
    unit: str = Field(min_length=1, max_length=16)
    origin: str = Field(default="", max_length=300, description="Place of origin of this batch")
    notes: str = Field(default="", max_length=2000)

    @field_validator("produced_on", "expires_on")
    @classmethod
    def _dates(cls, value: str | None) -> str | None:
        return _check_date(value, "date")

    _text = field_validator("unit", "origin")(text.line)
    _prose = field_validator("notes")(text.prose)

    @field_validator("lot")
    @classmethod
    def _lot(cls, value: str) -> str:
        # Printed in the label's GS1 Digital Link: a lot GS1 does not allow could not be.
        return check_lot(value)


class BatchCreate(BatchBase):
    id: str = slug_field()
    inputs: list[Slug] = Field(
        default_factory=list, max_length=50, description="Ids of the batches this one was made from"
    )


class Batch(BatchBase, table=True):
    # A producer's batches newest first (its dashboard, its batch list) read ten rows of
    # this index, not all of a big producer's 200,000 batches sorted.
    __table_args__ = (Index("ix_batch_producer_recent", "producer_id", "entry_index"),)
    id: str = Field(primary_key=True, max_length=64)
    producer_id: str = Field(max_length=64)
    entry_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Up to 10**12 base units (BatchBase): past PostgreSQL's 32-bit integer (migration 0016).
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    recalled_index: int | None = Field(default=None, sa_column=Column(BigInteger))
    recall_reason: str = ""
    recall_source: str = Field(
        default="", max_length=64, description="The batch whose recall flagged this one"
    )


Index("uq_batch_product_lot", Batch.__table__.c.product_id, Batch.__table__.c.lot, unique=True)  # type: ignore[attr-defined]


class BatchInput(SQLModel, table=True):
    batch_id: str = Field(primary_key=True, max_length=64)
    input_id: str = Field(primary_key=True, max_length=64, index=True)


class BatchPublic(BatchBase):
    id: str
    producer_id: str
    inputs: list[str]
    outputs: list[str]
    recalled: bool
    recall_reason: str
    recall_source: str
    entry_index: int


class RecallCreate(SQLModel):
    reason: str = Field(min_length=3, max_length=MAX_RECALL_REASON)

    _prose = field_validator("reason")(text.prose)


class RecallRecord(RecallCreate):
    """The body of a batch.recalled statement."""

    batch_id: str = slug_field()


# -- events and inspections --------------------------------------------------------------
class EventBase(SQLModel):
    biz_step: str
    at: str = Field(description="When it happened, UTC: YYYY-MM-DDTHH:MM:SSZ")
    place: str = Field(default="", max_length=300)
    note: str = Field(default="", max_length=2000)

    @field_validator("biz_step")
    @classmethod
    def _step(cls, value: str) -> str:
        if value not in ocop.BIZ_STEPS:
            raise ValueError(f"biz_step must be one of {', '.join(ocop.BIZ_STEPS)}")
        return value

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        from ledger.statement import check_timestamp  # one timestamp rule for all

        try:
            return check_timestamp(value, "at")
        except Exception:
            raise ValueError("at must be a UTC time written YYYY-MM-DDTHH:MM:SSZ") from None

    _text = field_validator("place")(text.line)
    _prose = field_validator("note")(text.prose)


class EventCreate(EventBase):
    pass


class EventRecord(EventBase):
    """The body of a batch.event statement."""

    batch_id: str = slug_field()


class BatchEvent(EventBase, table=True):
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    batch_id: str = Field(index=True, max_length=64)
    actor_key_id: str = Field(max_length=64)


class EventPublic(EventBase):
    id: int
    batch_id: str


class InspectionCreate(SQLModel):
    RESULTS: ClassVar[tuple[str, ...]] = ("pass", "fail", "note")
    batch_id: str = slug_field()
    result: str = Field(description="pass, fail or note")
    findings: str = Field(default="", max_length=4000)

    @field_validator("result")
    @classmethod
    def _result(cls, value: str) -> str:
        if value not in cls.RESULTS:
            raise ValueError("result must be pass, fail or note")
        return value

    _prose = field_validator("findings")(text.prose)


class Inspection(InspectionCreate, table=True):
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    inspector_key_id: str = Field(max_length=64)


# -- labels ------------------------------------------------------------------------------
class LabelIssue(SQLModel):
    count: int = Field(ge=1, le=MAX_LABELS, description="How many labels (serials) to issue")
    format: Literal["pdf", "svg", "png"] = Field(
        default="pdf", description="pdf (an A4 sheet), svg or png (one label)"
    )
    ec: Literal["M", "Q"] = Field(default="M", description="QR error correction: M or Q")
    offline: bool = Field(
        default=False, description="Sign each link with the producer's key (checkable offline)"
    )
    label_width_mm: float = Field(default=63.5, gt=0, le=200)
    label_height_mm: float = Field(default=38.1, gt=0, le=287)
    columns: int = Field(default=3, ge=1, le=20)
    rows: int = Field(default=7, ge=1, le=30)
    qr_mm: float = Field(default=30.0, gt=0, le=200, description="QR side, quiet zone included")

    def layout(self) -> dict[str, Any]:
        """The sheet's geometry, as `labels.check_sheet` and `render_pdf_sheet` take it."""
        return {
            "label_mm": (self.label_width_mm, self.label_height_mm),
            "grid": (self.columns, self.rows),
            "qr_mm": self.qr_mm,
        }


class LabelSetRecord(SQLModel):
    """The body of a labels.issued statement: the Merkle root of the set, never a serial."""

    batch_id: str = slug_field()
    count: int = Field(ge=1, le=MAX_LABELS)
    commitment: str = Field(
        schema_extra={"pattern": r"^[0-9a-f]{64}$"}, description="RFC 6962 root of the serials"
    )


class LabelVoid(SQLModel):
    """Why a misprinted label set is voided (its serials then scan as not registered)."""

    reason: str = Field(min_length=3, max_length=MAX_VOID_REASON)

    _line = field_validator("reason")(text.line)


class LabelVoidRecord(LabelVoid):
    """The body of a labels.voided statement: the set is its labels.issued entry's index;
    the batch is named too, so the entry says on its own which batch's codes it withdraws."""

    label_set: int = Field(ge=0, le=MAX_INDEX)
    batch_id: str = slug_field()


class LabelSet(SQLModel, table=True):
    """A labels.issued entry: how many serials a batch got and the Merkle root over them,
    and the labels.voided entry that withdrew them, if one did."""

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    batch_id: str = Field(index=True, max_length=64)
    count: int
    commitment: str = Field(max_length=64)
    voided_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    voided_reason: str = Field(default="", max_length=MAX_VOID_REASON)
    voided_at: str = Field(default="", max_length=32)  # the void statement's issued_at


class LabelSerial(SQLModel, table=True):
    """An issued serial. Not in the ledger (which holds only the commitment): the service's
    own record, checked against the committed root by `verify`."""

    __tablename__ = "label_serial"
    serial: str = Field(primary_key=True, max_length=16)
    batch_id: str = Field(index=True, max_length=64)
    label_set_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))


class ProductSearch(SQLModel, table=True):
    """A product's searchable text, folded (see search.py): the full-text indexes read it."""

    __tablename__ = "product_search"
    product_id: str = Field(primary_key=True, max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))


# The tables as SQLAlchemy Core objects, which the projection and the pages query.
PRODUCER = Producer.__table__  # type: ignore[attr-defined]
PRODUCT = Product.__table__  # type: ignore[attr-defined]
RATING = Rating.__table__  # type: ignore[attr-defined]
BATCH = Batch.__table__  # type: ignore[attr-defined]
BATCH_INPUT = BatchInput.__table__  # type: ignore[attr-defined]
EVENT = BatchEvent.__table__  # type: ignore[attr-defined]
INSPECTION = Inspection.__table__  # type: ignore[attr-defined]
LABEL_SET = LabelSet.__table__  # type: ignore[attr-defined]
LABEL_SERIAL = LabelSerial.__table__  # type: ignore[attr-defined]
UPDATE_HISTORY = UpdateRecord.__table__  # type: ignore[attr-defined]
PRODUCT_SEARCH = ProductSearch.__table__  # type: ignore[attr-defined]

_PROJECTED: tuple[Any, ...] = (
    Producer,
    Product,
    Rating,
    Batch,
    BatchInput,
    BatchEvent,
    Inspection,
    LabelSet,
    UpdateRecord,
    ProductSearch,
)
PROJECTION_TABLES = [model.__table__ for model in _PROJECTED]
