"""The council's spreadsheet upload page: a dry run, an all-or-none import, a repeat that
changes nothing, row errors in Vietnamese, and refusals (role, CSRF)."""

from __future__ import annotations

from typing import Any

import pytest
from support import Api
from test_import import PRODUCERS, PRODUCTS, RATINGS, workbook
from webapp_support import field_error, sign_in, tokens

PAGE = "/app/council/import"
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _send(client: Any, data: bytes, apply: bool = False, name: str = "list.xlsx") -> Any:
    """Open the page, then send its form with the file (and the page's hidden tokens)."""
    page = client.get(PAGE)
    assert page.status_code == 200, page.text
    fields = {**tokens(page.text, "import"), **({"apply": "yes"} if apply else {})}
    return client.post(PAGE, data=fields, files={"file": (name, data)})


def test_a_dry_run_then_an_import_then_the_same_file_changes_nothing(api: Api) -> None:
    council = sign_in(api, "council")
    home = council.get("/app/")
    assert 'href="/app/council/import"' in home.text  # linked from the council's home
    data = workbook(producers=PRODUCERS, products=PRODUCTS, ratings=RATINGS)
    size = api.service.store.size()
    dry = _send(council, data)
    assert dry.status_code == 200, dry.text
    assert "Tạo mới: 3 · Thay đổi: 0 · Giữ nguyên: 0 · Lỗi: 0" in dry.text
    assert "htx-bao-chau" in dry.text.split("data-actions")[1]
    assert 'href="/api/v1/imports/template"' in dry.text
    assert api.service.store.size() == size  # a dry run writes nothing
    applied = _send(council, data, apply=True)
    assert applied.status_code == 303, applied.text
    shown = council.get(applied.headers["location"])
    assert "4 bản ghi được thêm vào sổ cái" in shown.text  # three records and the key
    assert api.service.store.size() == size + 4
    assert api.client.get("/api/v1/products/tra-ca-gai-leo").status_code == 200
    again = _send(council, data, apply=True)
    assert again.status_code == 303
    assert "0 bản ghi" in council.get(again.headers["location"]).text
    assert api.service.store.size() == size + 4
    preview = _send(council, data)
    assert "Tạo mới: 0 · Thay đổi: 0 · Giữ nguyên: 3 · Lỗi: 0" in preview.text


def test_the_same_form_sent_twice_imports_once(api: Api) -> None:
    council = sign_in(api, "council")
    data = workbook(producers=PRODUCERS)
    page = council.get(PAGE)
    fields = {**tokens(page.text, "import"), "apply": "yes"}
    size = api.service.store.size()
    first = council.post(PAGE, data=fields, files={"file": ("l.xlsx", data)})
    second = council.post(PAGE, data=fields, files={"file": ("l.xlsx", data)})
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert api.service.store.size() == size + 2  # the producer and its key, once


def test_a_bad_file_shows_each_rows_errors_in_vietnamese_and_writes_nothing(api: Api) -> None:
    council = sign_in(api, "council")
    producers = [PRODUCERS[0], {**PRODUCERS[0], "id": "htx-x", "type": "kolkhoz"}]
    products = [{**PRODUCTS[0], "producer_id": "nobody"}]
    size = api.service.store.size()
    answer = _send(council, workbook(producers=producers, products=products), apply=True)
    assert answer.status_code == 422, answer.text
    table = answer.text.split("data-errors>")[1].split("</table>")[0]
    assert "<td>producers</td><td>3</td><td>type</td>" in table
    assert "<td>products</td><td>2</td><td>producer_id</td>" in table
    assert "nobody" in table
    assert "chưa ghi gì vào sổ cái" in answer.text
    assert "unknown" not in table.lower()  # the reasons in Vietnamese, not English
    assert api.service.store.size() == size
    english = council.get(f"{PAGE}?lang=en")
    assert english.status_code == 200
    wrong = _send(council, b"a,b\n1,2\n", name="list.txt")
    assert wrong.status_code == 422
    assert field_error(wrong.text, "file")
    assert api.service.store.size() == size


@sqlite_only
def test_a_producer_or_inspector_is_refused_and_a_form_without_csrf_too(api: Api) -> None:
    data = workbook(producers=PRODUCERS)
    size = api.service.store.size()
    for role in ("producer", "inspector"):
        client = sign_in(api, role)
        csrf = tokens(client.get("/app/").text)
        assert client.get(PAGE).status_code == 403
        sent = client.post(PAGE, data={**csrf, "apply": "yes"}, files={"file": ("l.xlsx", data)})
        assert sent.status_code == 403
        assert 'href="/app/council/import"' not in client.get("/app/").text
    council = sign_in(api, "council")
    council.get(PAGE)
    forged = council.post(PAGE, data={"apply": "yes"}, files={"file": ("l.xlsx", data)})
    assert forged.status_code == 422
    assert field_error(forged.text, "_form")
    assert api.service.store.size() == size
