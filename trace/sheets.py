"""Spreadsheets as rows of text, and rows as spreadsheets: XLSX (openpyxl) and CSV, bounded."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from ocop_trace.errors import InvalidInput, PayloadTooLarge
from ocop_trace.import_messages import message

MAX_BYTES = 5_000_000  # an uploaded spreadsheet
MAX_ROWS = 5000  # data rows a sheet
MAX_COLUMNS = 30  # columns read a row (more are ignored)
MAX_CELL = 4000  # characters a cell


@dataclass(frozen=True)
class Sheet:
    """One sheet's header (column names, lower case) and its data rows, numbered as the
    spreadsheet numbers them (the header is row 1); empty rows are left out."""

    name: str
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]


class SheetError(InvalidInput):
    """A file that cannot be read as a spreadsheet; `text` holds the message in vi and en."""

    def __init__(self, key: str, **values: object) -> None:
        self.text = message(key, **values)
        super().__init__(f"{self.text['en']} / {self.text['vi']}", field="file")


def read_sheets(filename: str, data: bytes) -> list[Sheet]:
    """Every sheet of an .xlsx file, or the one sheet of a .csv (UTF-8, with or without BOM)."""
    if len(data) > MAX_BYTES:
        error = PayloadTooLarge(message("too_large", limit=MAX_BYTES)["en"], field="file")
        raise error
    name = filename.lower()
    if name.endswith(".csv"):
        return [_read_csv(data)]
    if name.endswith(".xlsx"):
        return _read_xlsx(data)
    raise SheetError("not_a_sheet")


def cell_text(value: Any) -> str:
    """A cell as the text a clerk sees: dates ISO, whole numbers without '.0'."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value).strip()


def _rows(name: str, raw: Iterable[Sequence[Any]]) -> Sheet:
    rows = iter(raw)
    header = [cell_text(c).lower() for c in next(rows, [])]
    found: list[tuple[int, dict[str, str]]] = []
    for number, values in enumerate(rows, start=2):
        texts = [cell_text(v)[:MAX_CELL] for v in values[:MAX_COLUMNS]]
        if not any(texts):
            continue
        if len(found) >= MAX_ROWS:
            raise SheetError("too_many_rows", limit=MAX_ROWS)
        found.append((number, {h: t for h, t in zip(header, texts, strict=False) if h}))
    return Sheet(name, header, found)


def _read_csv(data: bytes) -> Sheet:
    try:
        text = data.decode("utf-8-sig")
        return _rows("", csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error):
        raise SheetError("not_a_sheet") from None


def _read_xlsx(data: bytes) -> list[Sheet]:
    from openpyxl import load_workbook  # only for spreadsheets: a heavy import

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise SheetError("not_a_sheet") from None
    try:
        return [
            _rows(ws.title, ws.iter_rows(max_col=MAX_COLUMNS, values_only=True))
            for ws in book.worksheets
        ]
    finally:
        book.close()


def write_xlsx(
    sheets: Iterable[tuple[str, Sequence[str], Iterable[Sequence[Any]]]], out: IO[bytes]
) -> None:
    """Sheets written a row at a time (memory stays flat), each with a frozen header row
    and a filter on it, so a clerk can sort and filter every column."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    for title, header, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.freeze_panes = "A2"
        sheet.append(list(header))
        count = 0
        for row in rows:
            sheet.append(list(row))
            count += 1
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{count + 1}"
    book.save(out)


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]], out: IO[str]) -> None:
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
