"""A council's own lists in: producers, products and ratings from a spreadsheet.

`plan_import` reads the file and says, row by row, what would be created, changed or left
as it is, and every row's errors (row, column, reason in Vietnamese and English); nothing
is written. `apply_import` signs the plan's statements with the council's key and appends
them in one transaction, all or none. A row that matches what the service holds plans
nothing, so importing the same file again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, select

from ledger.store import Receipt
from ocop_trace.accounts import Principal
from ocop_trace.errors import InvalidInput, ServiceError, as_service_error
from ocop_trace.import_messages import message
from ocop_trace.models import (
    PRODUCER,
    PRODUCT,
    RATING,
    ProducerChanges,
    ProducerCreate,
    ProductChanges,
    ProductCreate,
    RatingCreate,
)
from ocop_trace.reads import producer_public
from ocop_trace.service import TraceService, require_role
from ocop_trace.sheets import Sheet, read_sheets

_ADDRESS = ("province", "district", "commune", "line")
COLUMNS: dict[str, tuple[str, ...]] = {
    "producers": (
        "id",
        "name",
        "type",
        "registration_no",
        "contact",
        "description",
        *(f"certified_{p}" for p in _ADDRESS),
        "current_province",
        "current_commune",
        "current_line",
    ),
    "products": (
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
    "ratings": (
        "product_id",
        "score",
        "level",
        "issuing_body",
        "decision_no",
        "decision_date",
        "certificate_no",
        "issued_on",
        "evaluation_year",
        "criteria",
    ),
}
REQUIRED = {"producers": 3, "products": 5, "ratings": 9}  # the leading columns a sheet needs
_FIXED = {"producers": ("type", "registration_no"), "products": ("producer_id", "product_set")}


@dataclass
class RowError:
    sheet: str
    row: int
    column: str
    vi: str
    en: str


@dataclass
class Action:
    """What one row becomes: `create`, `update` or `unchanged`, and the statement if any."""

    sheet: str
    row: int
    action: str
    id: str
    kind: str | None = None
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "unchanged": 0, "errors": len(self.errors)}
        for action in self.actions:
            out[action.action] += 1
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts(),
            "actions": [
                {"sheet": a.sheet, "row": a.row, "action": a.action, "id": a.id, "kind": a.kind}
                | ({"changes": a.body} if a.action == "update" else {})
                for a in self.actions
            ],
            "errors": [vars(e) for e in self.errors],
        }


GUIDE = "huong-dan"  # the template's guide sheet, which the import skips
_GUIDE = {
    "producers": "Chủ thể sản xuất: mã (chữ thường, số, '-'), tên, loại (enterprise, "
    "cooperative, cooperative_group, household), địa chỉ như trên giấy chứng nhận và hiện "
    "nay (sau 1/7/2025, không có huyện) / Producers: id, name, type, addresses",
    "products": "Sản phẩm: mã, mã chủ thể, tên, bộ sản phẩm OCOP (vd. food.tea), GTIN nếu "
    "có, ảnh (URL và SHA-256) / Products: id, producer id, names, OCOP product set, GTIN",
    "ratings": "Xếp hạng: mã sản phẩm, điểm (vd. 91.14), cấp (national, provincial, "
    "district), cơ quan, số và ngày quyết định, số giấy chứng nhận, ngày cấp, năm đánh giá "
    "/ Ratings: product id, score, level, body, decision, certificate, dates",
}


def template_sheets() -> list[tuple[str, list[str], list[list[str]]]]:
    """The template: one sheet per list, headers only, and a guide."""
    sheets: list[tuple[str, list[str], list[list[str]]]] = [
        (name, list(columns), []) for name, columns in COLUMNS.items()
    ]
    guide = [[name, text] for name, text in _GUIDE.items()]
    return [*sheets, (GUIDE, ["sheet", "hướng dẫn / guide"], guide)]


def _kind_of(sheet: Sheet) -> str | None:
    if sheet.name.lower() in COLUMNS:
        return sheet.name.lower()
    for kind, columns in COLUMNS.items():  # a CSV: known by its columns
        if set(columns[: REQUIRED[kind]]) <= set(sheet.header):
            return kind
    return None


class _Planner:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.plan = Plan()
        self.producers_created: set[str] = set()  # by this file, before its later rows
        self.products_created: set[str] = set()

    def error(self, sheet: str, row: int, where: str, key: str, **values: object) -> None:
        text = message(key, **values)
        self.plan.errors.append(RowError(sheet, row, where, text["vi"], text["en"]))

    def model(
        self, sheet: str, row: int, model: type[BaseModel], values: dict[str, Any]
    ) -> Any | None:
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            for problem in exc.errors():
                column = _column(problem["loc"])
                if problem["type"] == "missing":
                    self.error(sheet, row, column, "required")
                else:
                    detail = str(problem["msg"]).removeprefix("Value error, ")
                    self.error(sheet, row, column, "invalid", detail=detail)
            return None

    def sheet(self, sheet: Sheet) -> None:
        if sheet.name.lower() == GUIDE:
            return
        kind = _kind_of(sheet)
        if kind is None:
            self.error(sheet.name or "csv", 1, "", "unknown_sheet")
            return
        missing = [c for c in COLUMNS[kind][: REQUIRED[kind]] if c not in sheet.header]
        if missing:
            self.error(kind, 1, ",".join(missing), "bad_header", columns=", ".join(missing))
            return
        seen: set[str] = set()
        take: Callable[[int, dict[str, str]], None] = getattr(self, kind)
        for row, values in sheet.rows:
            key = values.get("id") or f"{values.get('product_id')}/{values.get('decision_no')}"
            if key in seen:
                self.error(kind, row, "id", "duplicate", id=key)
                continue
            seen.add(key)
            take(row, values)

    def producers(self, row: int, v: dict[str, str]) -> None:
        current = {p: v.get(f"current_{p}", "") for p in ("province", "commune", "line")}
        certified = {p: v.get(f"certified_{p}", "") for p in _ADDRESS}
        if not current["province"]:  # a list made before the reform: the address as it was
            current = {p: certified[p] for p in ("province", "commune", "line")}
        values: dict[str, Any] = {k: v.get(k, "") for k in COLUMNS["producers"][:6]}
        values.update(address_certified=certified, address_current=current)
        data = self.model("producers", row, ProducerCreate, _present(values))
        if data is None:
            return
        held = self.held_or_create("producers", row, PRODUCER, data, self.producers_created)
        if held is None:
            return
        now = producer_public(held).model_dump()
        wanted = data.model_dump()
        wanted["address_current"]["district"] = ""
        self.compare("producers", row, data.id, now, wanted, ProducerChanges)

    def held_or_create(
        self, sheet: str, row: int, table: Any, data: Any, created: set[str]
    ) -> Any | None:
        """The row the service holds for this id; if none, a create action (and None)."""
        held = self.conn.execute(select(table).where(table.c.id == data.id)).first()
        if held is None:
            created.add(data.id)
            kind = f"{sheet[:-1]}.registered"
            body = data.model_dump(exclude_none=True)
            self.plan.actions.append(Action(sheet, row, "create", data.id, kind, body))
        return held

    def compare(
        self,
        sheet: str,
        row: int,
        subject: str,
        now: dict[str, Any],
        wanted: dict[str, Any],
        changes: type[BaseModel],
    ) -> None:
        for column in _FIXED[sheet]:
            if wanted[column] != now[column]:
                self.error(sheet, row, column, "fixed", column=column, held=now[column])
                return
        differ = {
            k: wanted[k] for k in changes.model_fields if k in wanted and wanted[k] != now.get(k)
        }
        if {"image_url", "image_sha256"} & set(differ):  # a photo changes as a pair
            differ.update(image_url=wanted["image_url"], image_sha256=wanted["image_sha256"])
        if not differ:
            self.plan.actions.append(Action(sheet, row, "unchanged", subject))
            return
        if self.model(sheet, row, changes, differ) is None:
            return
        kind = "producer.updated" if sheet == "producers" else "product.updated"
        self.plan.actions.append(Action(sheet, row, "update", subject, kind, differ))

    def products(self, row: int, v: dict[str, str]) -> None:
        data = self.model("products", row, ProductCreate, _present(v, COLUMNS["products"]))
        if data is None:
            return
        if data.producer_id not in self.producers_created and not self._exists(
            PRODUCER, data.producer_id
        ):
            self.error("products", row, "producer_id", "unknown_producer", id=data.producer_id)
            return
        held = self.held_or_create("products", row, PRODUCT, data, self.products_created)
        if held is None:
            return
        self.compare(
            "products", row, data.id, dict(held._mapping), data.model_dump(), ProductChanges
        )

    def ratings(self, row: int, v: dict[str, str]) -> None:
        values: dict[str, Any] = _present(v, COLUMNS["ratings"])
        score = values.pop("score", None)
        if score is not None:
            try:
                values["score_hundredths"] = int(Decimal(score) * 100)
            except InvalidOperation:
                self.error("ratings", row, "score", "bad_number")
                return
        if "evaluation_year" in values and values["evaluation_year"].isdigit():
            values["evaluation_year"] = int(values["evaluation_year"])
        data = self.model("ratings", row, RatingCreate, values)
        if data is None:
            return
        if data.product_id not in self.products_created and not self._exists(
            PRODUCT, data.product_id
        ):
            self.error("ratings", row, "product_id", "unknown_product", id=data.product_id)
            return
        body = data.model_dump(exclude_none=True)
        recorded = self.conn.execute(
            select(RATING).where(
                RATING.c.product_id == data.product_id, RATING.c.decision_no == data.decision_no
            )
        ).all()
        if any(all(getattr(r, k) == body[k] for k in body) for r in recorded):
            self.plan.actions.append(Action("ratings", row, "unchanged", data.decision_no))
        elif recorded:
            self.error("ratings", row, "decision_no", "rating_changed", id=data.decision_no)
        else:
            self.plan.actions.append(
                Action("ratings", row, "create", data.decision_no, "rating.recorded", body)
            )

    def _exists(self, table: Any, key: str) -> bool:
        return self.conn.execute(select(table.c.id).where(table.c.id == key)).first() is not None


def _present(values: dict[str, Any], columns: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The row's non-empty cells (an empty cell takes the model's default)."""
    keys = columns or tuple(values)
    return {k: values[k] for k in keys if k in values and values[k] not in ("", None)}


def _column(loc: tuple[Any, ...]) -> str:
    """The spreadsheet column a model field is read from."""
    name = ".".join(str(p) for p in loc)
    for which in ("certified", "current"):
        name = name.replace(f"address_{which}.", f"{which}_")
    return "score" if name == "score_hundredths" else name


def plan_import(service: TraceService, filename: str, data: bytes) -> Plan:
    """What importing this file would do, row by row, and every row's errors."""
    sheets = read_sheets(filename, data)
    with service.engine.connect() as conn:
        planner = _Planner(conn)
        # Producers before the products that name them, products before their ratings.
        order = {"producers": 0, "products": 1, "ratings": 2}
        for sheet in sorted(sheets, key=lambda s: order.get(_kind_of(s) or "", 3)):
            planner.sheet(sheet)
    return planner.plan


def apply_import(service: TraceService, principal: Principal, plan: Plan) -> list[Receipt]:
    """Sign and append every statement of a plan without errors, all or none."""
    require_role(principal, "council")
    if not plan.ok:
        raise InvalidInput(
            f"the file has {len(plan.errors)} errors: nothing was imported",
            details=plan.as_json(),
        )
    planned = [a for a in plan.actions if a.kind is not None]
    subject = {"producer.updated": "producer_id", "product.updated": "product_id"}
    items, positions = [], []  # positions: statement -> action (a producer brings its key)
    for number, action in enumerate(planned):
        kind = str(action.kind)
        body = {subject[kind]: action.id, **action.body} if kind in subject else action.body
        items.append((kind, body))
        positions += [number] * (2 if kind == "producer.registered" else 1)
    try:
        return service.council_signs(principal, items) if items else []
    except Exception as exc:
        error = as_service_error(exc)
        if error is None or error.position is None or not isinstance(error, ServiceError):
            raise
        action = planned[positions[error.position]]
        text = message("refused", detail=error.message)
        raise type(error)(
            f"{action.sheet} row {action.row}: {error.message}; nothing was imported",
            field="file",
            details={
                "errors": [
                    {"sheet": action.sheet, "row": action.row, "column": error.field or "", **text}
                ]
            },
        ) from None
