"""Spreadsheets out: every batch, its events and the portal's fields, sortable, in XLSX and CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from openpyxl import load_workbook
from support import BATCH, Api
from test_epcis import every_kind_of_event
from typer.testing import CliRunner

from ocop_trace.cli import app
from ocop_trace.sheets_out import COLUMNS


def test_the_workbook_lists_batches_events_and_portal_fields(api: Api) -> None:
    every_kind_of_event(api)
    answer = api.client.get("/api/v1/exports/batches.xlsx")
    assert answer.status_code == 200
    book = load_workbook(io.BytesIO(answer.content))
    assert book.sheetnames == ["batches", "events", "portal"]
    batches = list(book["batches"].iter_rows(values_only=True))
    assert list(batches[0]) == list(COLUMNS["batches"])
    assert book["batches"].auto_filter.ref == "A1:P3"  # sortable: a filter on every column
    made = {row[0]: row for row in batches[1:]}[BATCH["id"]]
    assert made[6] == datetime(2026, 1, 4)  # a real date cell, which sorts as a date
    assert made[8] == 1200000
    assert made[11] == "rice-1"  # its input
    rice = {row[0]: row for row in batches[1:]}["rice-1"]
    assert (rice[12], rice[13], rice[14]) == (BATCH["id"], "yes", "mốc")
    events = list(book["events"].iter_rows(values_only=True))[1:]
    assert len(events) == 6
    assert {e[3] for e in events} >= {"Thu hoạch", "Đóng gói"}
    assert all(e[5] == "xã Côn Minh" for e in events)
    portal = {row[7]: row for row in list(book["portal"].iter_rows(values_only=True))[1:]}
    assert portal["L2601"][2] == "HTX Tài Hoan"
    assert portal["L2601"][3] == "thôn Chè Cọ, Côn Minh, Thái Nguyên"
    assert portal["L2601"][6] == "08936012345674"
    assert portal["L2601"][9].endswith("/01/08936012345674/10/L2601")
    csv_answer = api.client.get("/api/v1/exports/batches.csv?sheet=events")
    rows = list(csv.reader(io.StringIO(csv_answer.text)))
    assert rows[0] == list(COLUMNS["events"])
    assert len(rows) == 7
    assert api.client.get("/api/v1/exports/batches.csv?sheet=nope").status_code == 422


def test_the_command_line_writes_both_forms(api: Api, tmp_path: Path) -> None:
    every_kind_of_event(api)
    runner = CliRunner()
    db = ["--db", api.settings.database_url]
    assert (
        runner.invoke(app, ["export-sheet", "--out", str(tmp_path / "a.xlsx"), *db]).exit_code == 0
    )
    assert load_workbook(tmp_path / "a.xlsx").sheetnames == ["batches", "events", "portal"]
    done = runner.invoke(
        app, ["export-sheet", "--out", str(tmp_path / "p.csv"), "--sheet", "portal", *db]
    )
    assert done.exit_code == 0, done.output
    assert (tmp_path / "p.csv").read_text("utf-8").startswith(",".join(COLUMNS["portal"]))
    assert runner.invoke(app, ["export-sheet", "--out", "x.txt", *db]).exit_code == 2
    assert (
        runner.invoke(app, ["export-sheet", "--out", "x.csv", "--sheet", "no", *db]).exit_code == 2
    )
