"""Councils' spreadsheets in: the template, dry runs, all-or-none imports, repeats, errors."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from support import PASSWORD, Api
from typer.testing import CliRunner

from ocop_trace.catalogue_import import COLUMNS
from ocop_trace.cli import app

PRODUCERS = [
    {
        "id": "htx-bao-chau",
        "name": "HTX Bảo Châu",
        "type": "cooperative",
        "certified_province": "tỉnh Bắc Kạn",
        "certified_district": "huyện Na Rì",
        "certified_commune": "xã Văn Lang",
    }
]
PRODUCTS = [
    {
        "id": "tra-ca-gai-leo",
        "producer_id": "htx-bao-chau",
        "name_vi": "Trà cà gai leo",
        "product_set": "food.tea_other_plants",
    }
]
RATINGS = [
    {
        "product_id": "tra-ca-gai-leo",
        "score": "64.20",
        "level": "provincial",
        "issuing_body": "Hội đồng OCOP tỉnh",
        "decision_no": "DEMO-07/QĐ",
        "decision_date": "2025-09-01",
        "certificate_no": "DEMO-3S-0007",
        "issued_on": "2025-09-01",
        "evaluation_year": 2025,
    }
]


def workbook(**sheets: list[dict[str, Any]]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        sheet.append(list(COLUMNS[name]))
        for row in rows:
            sheet.append([row.get(c) for c in COLUMNS[name]])
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


def send(api: Api, data: bytes, name: str = "list.xlsx", apply: bool = False) -> Any:
    return api.client.post(
        f"/api/v1/imports?apply={'true' if apply else 'false'}",
        files={"file": (name, data)},
        headers=api.as_("council"),
    )


def test_the_template_downloads_with_every_list(api: Api) -> None:
    answer = api.client.get("/api/v1/imports/template")
    assert answer.status_code == 200
    book = load_workbook(io.BytesIO(answer.content), read_only=True)
    assert book.sheetnames == ["producers", "products", "ratings", "huong-dan"]
    header = next(book["ratings"].iter_rows(values_only=True))
    assert list(header) == list(COLUMNS["ratings"])
    csv = api.client.get("/api/v1/imports/template?format=csv&sheet=products")
    assert csv.text.splitlines()[0] == ",".join(COLUMNS["products"])


def test_dry_run_then_apply_then_the_same_file_changes_nothing(api: Api) -> None:
    data = workbook(producers=PRODUCERS, products=PRODUCTS, ratings=RATINGS)
    size = api.service.store.size()
    dry = send(api, data)
    assert dry.status_code == 200, dry.text
    assert dry.json()["counts"] == {"create": 3, "update": 0, "unchanged": 0, "errors": 0}
    assert api.service.store.size() == size  # a dry run writes nothing
    applied = send(api, data, apply=True)
    assert applied.status_code == 201, applied.text
    assert applied.json()["appended"] == 4  # three records and the producer's key
    producer = api.client.get("/api/v1/producers/htx-bao-chau").json()
    assert producer["address_current"] == {
        "province": "tỉnh Bắc Kạn",
        "district": "",
        "commune": "xã Văn Lang",
        "line": "",
    }
    ratings = api.client.get("/api/v1/products/tra-ca-gai-leo/ratings").json()["items"]
    assert [(r["score_hundredths"], r["stars"]) for r in ratings] == [(6420, 3)]
    again = send(api, data, apply=True)
    assert again.status_code == 201
    assert again.json()["counts"] == {"create": 0, "update": 0, "unchanged": 3, "errors": 0}
    assert api.service.store.size() == size + 4
    # The reform, in the council's next list: an update with its history.
    moved = [
        {**PRODUCERS[0], "current_province": "tỉnh Thái Nguyên", "current_commune": "xã Văn Lang"}
    ]
    changed = send(api, workbook(producers=moved), apply=True)
    assert changed.status_code == 201, changed.text
    action = changed.json()["actions"][0]
    assert action["action"] == "update"
    assert set(action["changes"]) == {"address_current"}
    history = api.client.get("/api/v1/producers/htx-bao-chau/history").json()["items"]
    assert len(history) == 1


def test_every_bad_row_is_named_in_both_languages_and_nothing_is_imported(api: Api) -> None:
    producers = [
        PRODUCERS[0],
        {**PRODUCERS[0], "id": "htx-x", "type": "kolkhoz", "name": ""},
        PRODUCERS[0],
    ]
    products = [
        {**PRODUCTS[0], "producer_id": "nobody"},
        {**PRODUCTS[0], "id": "p2", "gtin": "123"},
    ]
    ratings = [
        {**RATINGS[0], "score": "chín mươi"},
        {**RATINGS[0], "decision_no": "D2", "decision_date": "1/9/2025"},
    ]
    size = api.service.store.size()
    answer = send(
        api, workbook(producers=producers, products=products, ratings=ratings), apply=True
    )
    assert answer.status_code == 422, answer.text
    errors = {(e["sheet"], e["row"], e["column"]) for e in answer.json()["errors"]}
    assert {
        ("producers", 3, "type"),
        ("producers", 3, "name"),
        ("producers", 4, "id"),
        ("products", 2, "producer_id"),
        ("products", 3, "gtin"),
        ("ratings", 2, "score"),
        ("ratings", 3, "decision_date"),
    } <= errors
    for error in answer.json()["errors"]:
        assert error["vi"]
        assert error["en"]
        assert error["vi"] != error["en"]
    assert api.service.store.size() == size


def test_csv_lists_fixed_fields_and_bad_files(api: Api) -> None:
    send(api, workbook(producers=PRODUCERS, products=PRODUCTS), apply=True)
    header = ",".join(COLUMNS["products"])
    row = "tra-ca-gai-leo,htx-bao-chau,Trà cà gai leo túi lọc,,food.tea_other_plants,,,,"
    renamed = send(api, f"\ufeff{header}\n{row}\n".encode(), name="products.csv", apply=True)
    assert renamed.status_code == 201, renamed.text
    assert api.client.get("/api/v1/products/tra-ca-gai-leo").json()["name_vi"].endswith("túi lọc")
    moved = row.replace("food.tea_other_plants", "food.tea")
    fixed = send(api, f"{header}\n{moved}\n".encode(), name="products.csv")
    assert fixed.status_code == 422
    assert fixed.json()["errors"][0]["column"] == "product_set"
    assert send(api, b"PK\x03\x04 not really", name="x.xlsx").status_code == 422
    assert send(api, b"a,b\n1,2\n", name="x.txt").status_code == 422
    assert send(api, b"\xff\xfe\x00", name="x.csv").status_code == 422
    assert send(api, b"unknown,columns\n1,2\n", name="x.csv").status_code == 422
    big = send(api, b"x" * 5_000_001, name="x.csv")
    assert big.status_code == 413
    producer = api.client.post(
        "/api/v1/imports", files={"file": ("l.csv", b"a")}, headers=api.as_("producer")
    )
    assert producer.status_code == 403


def test_the_command_line_imports_and_writes_the_template(api: Api, tmp_path: Path) -> None:
    runner = CliRunner()
    template = tmp_path / "mau.xlsx"
    result = runner.invoke(app, ["import", "--template", str(template)])
    assert result.exit_code == 0, result.output
    assert load_workbook(template).sheetnames[:3] == ["producers", "products", "ratings"]
    sheet = tmp_path / "list.xlsx"
    sheet.write_bytes(workbook(producers=PRODUCERS, products=PRODUCTS))
    db = ["--db", api.settings.database_url]
    env = {"TRACE_KEY_DIR": str(api.settings.key_dir)}
    dry = runner.invoke(app, ["import", str(sheet), *db], env=env)
    assert dry.exit_code == 0, dry.output
    assert "create: 2" in dry.output
    assert "dry run" in dry.output
    done = runner.invoke(app, ["import", str(sheet), "--apply", *db], env=env)
    assert done.exit_code == 0, done.output
    assert api.client.get("/api/v1/products/tra-ca-gai-leo").status_code == 200
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(COLUMNS["products"]) + "\nx,nobody,ab,,food.tea,,,,\n", "utf-8")
    refused = runner.invoke(app, ["import", str(bad), *db], env=env)
    assert refused.exit_code == 2
    assert "Traceback" not in refused.output
    assert PASSWORD  # the API's users are untouched by the command line
