"""The public site: code entry, the catalogue's search and filters (SQLite and PostgreSQL),
the product and producer pages, the ledger page and its bundle, photos, sharing."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pages import HTML, Page, scan
from PIL import Image
from sqlalchemy import text
from support import (
    BATCH,
    OTHER_PRODUCER,
    PRODUCER,
    PRODUCT,
    RATING,
    Api,
    issue_labels,
    issued_serials,
)

from ocop_trace import photo_store, search
from ocop_trace.serials import parse_canonical

MAX_PAGE = 100_000  # bytes of HTML before photos


# -- code entry ------------------------------------------------------------------------
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_accepted_form_of_the_printed_code_goes_to_its_label(api: Api) -> None:
    issue_labels(api, 1)
    serial = issued_serials(api)[0]
    human = parse_canonical(serial).human  # 411Z-JPA2-G4MN-T300-~ as printed
    compact = human.replace("-", "")
    forms = [
        human,
        human.lower(),
        compact,
        compact.lower(),
        " ".join(human.split("-")),
        f"  {human[:9]} {human[9:].lower()}  ",
        human.replace("1", "l").replace("0", "o"),  # read aloud: l as 1, o as 0
    ]
    for typed in forms:
        answer = api.client.get("/code", params={"code": typed}, follow_redirects=False)
        assert answer.status_code == 303, typed
        assert answer.headers["location"] == f"/l/{serial}?lang=vi", typed
    # /l/ takes the printed form too, in any case.
    for short in (human, human.lower(), compact):
        status, page, _ = scan(api, f"/l/{short}")
        assert status == 200, short
        assert page.fields["text:lot"] == BATCH["lot"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_mistyped_character_is_caught_and_what_was_typed_is_kept(api: Api) -> None:
    issue_labels(api, 1)
    human = parse_canonical(issued_serials(api)[0]).human
    # Change one data character: the check character no longer matches.
    swap = "2" if human[5] != "2" else "3"
    typo = human[:5] + swap + human[6:]
    for lang, words in (("vi", "gõ nhầm"), ("en", "mistyped")):
        answer = api.client.get("/code", params={"code": typo, "lang": lang}, headers=HTML)
        assert answer.status_code == 422
        page = Page(answer.text)
        assert words in page.fields["text:code-error"]
        assert f'value="{typo}"' in answer.text
        assert page.lang == lang
    too_short = api.client.get("/code", params={"code": human[:-3]}, headers=HTML)
    assert too_short.status_code == 422
    assert "17" in Page(too_short.text).fields["text:code-error"]
    odd = api.client.get("/code", params={"code": "ÀBCD-" + human[5:]}, headers=HTML)
    assert odd.status_code == 422
    assert "ÀBCD" in odd.text
    empty = api.client.get("/code", headers=HTML)
    assert empty.status_code == 200
    assert Page(empty.text).headings[0][0] == "h1"


# -- the catalogue's search ---------------------------------------------------------------
ELSEWHERE = {
    **OTHER_PRODUCER,
    "address_certified": {
        "province": "Tuyên Quang",
        "district": "Na Hang",
        "commune": "Hồng Thái",
        "line": "",
    },
    "address_current": {"province": "Tuyên Quang", "commune": "Hồng Thái", "line": ""},
}
PRODUCTS = [
    {**PRODUCT},
    {
        "id": "tra-xanh-tan-son",
        "producer_id": "htx-tan-son",
        "name_vi": "Trà xanh Tân Sơn",
        "product_set": "food.tea",
    },
    {
        "id": "tra-hoa-vang",
        "producer_id": "htx-tai-hoan",
        "name_vi": "Trà hoa vàng Đồng Hỷ",
        "product_set": "food.tea_other_plants",
    },
    {
        "id": "homestay-pac-ngoi",
        "producer_id": "htx-tan-son",
        "name_vi": "Homestay Pác Ngòi",
        "name_en": "Pac Ngoi homestay",
        "product_set": "tourism.community_eco_sites",
    },
]


def _catalogue(api: Api) -> None:
    assert api.post("/api/v1/producers", ELSEWHERE, "council").status_code == 201
    for product in PRODUCTS:
        assert api.post("/api/v1/products", product, "council").status_code == 201
    assert api.post("/api/v1/ratings", RATING, "council").status_code == 201


def _found(api: Api, **params: str) -> list[str]:
    answer = api.client.get("/", params=params, headers=HTML)
    assert answer.status_code == 200, answer.text
    assert len(answer.content) < MAX_PAGE
    return re.findall(r'data-product="([a-z0-9-]+)"', answer.text)


def test_search_ignores_diacritics_and_case_and_filters_narrow_it(api: Api) -> None:
    _catalogue(api)
    assert sorted(_found(api)) == sorted(p["id"] for p in PRODUCTS)
    assert _found(api) == sorted(
        _found(api),
        key=lambda i: next(  # in the names' order
            p["name_vi"] for p in PRODUCTS if p["id"] == i
        ),
    )
    for query in ("mien dong", "MIẾN DONG", "Miến dong Tài Hoan", "mien"):
        assert _found(api, q=query) == ["mien-dong-tai-hoan"], query
    assert sorted(_found(api, q="tra")) == ["tra-hoa-vang", "tra-xanh-tan-son"]
    assert sorted(_found(api, q="Trà")) == ["tra-hoa-vang", "tra-xanh-tan-son"]
    assert _found(api, q="dong hy") == ["tra-hoa-vang"]  # đ read as d
    assert _found(api, q="tan son tra") == ["tra-xanh-tan-son"]
    assert _found(api, q="xyzzy") == []
    assert _found(api, q="'\") OR 1=1 --") == []  # words only: nothing reaches the query
    # Filters: stars, sector, province, commune; with a search too.
    assert _found(api, stars="5") == ["mien-dong-tai-hoan"]
    assert _found(api, stars="3") == []
    assert _found(api, sector="tourism") == ["homestay-pac-ngoi"]
    food = ["mien-dong-tai-hoan", "tra-hoa-vang", "tra-xanh-tan-son"]
    assert sorted(_found(api, sector="food")) == food
    assert sorted(_found(api, province="Tuyên Quang")) == ["homestay-pac-ngoi", "tra-xanh-tan-son"]
    assert _found(api, q="tra", commune="Côn Minh") == ["tra-hoa-vang"]
    assert _found(api, stars="nine", sector="spaceships") != []  # unknown filters ignored
    assert _found(api, q="tra\x00", province="Th\x00ái") == []  # no 500 on either database
    assert api.client.get("/p/tra%00", headers=HTML).status_code == 404
    assert api.client.get("/producers/x%00y", headers=HTML).status_code == 404
    # A service is shown as a service.
    page = api.client.get("/", params={"sector": "tourism", "lang": "en"}, headers=HTML).text
    assert 'data-service="yes"' in page
    assert ">Service<" in page
    assert "Pac Ngoi homestay" in page


def test_the_search_index_follows_updates_in_the_same_transaction(api: Api) -> None:
    _catalogue(api)
    change = {"name_vi": "Miến dong đặc biệt"}
    answer = api.post("/api/v1/products/mien-dong-tai-hoan/updates", change, "council")
    assert answer.status_code == 201, answer.text
    assert _found(api, q="dac biet") == ["mien-dong-tai-hoan"]
    assert _found(api, q="tai hoan mien") == ["mien-dong-tai-hoan"]  # the producer's name
    moved = {"address_current": {"province": "Bắc Kạn", "commune": "Yến Lạc", "line": ""}}
    answer = api.post("/api/v1/producers/htx-tan-son/updates", moved, "council")
    assert answer.status_code == 201, answer.text
    assert sorted(_found(api, q="yen lac")) == ["homestay-pac-ngoi", "tra-xanh-tan-son"]
    with api.service.engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM product_search")).scalar_one()
    assert rows == len(PRODUCTS)


def test_a_refused_statement_leaves_no_search_row(api: Api) -> None:
    _catalogue(api)
    twin = {**PRODUCTS[1], "name_vi": "Trà giả mạo"}
    assert api.post("/api/v1/products", twin, "council").status_code == 409
    assert _found(api, q="gia mao") == []


# -- product and producer pages -------------------------------------------------------------
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_product_page_shows_what_was_signed_each_fact_checked(api: Api) -> None:
    issue_labels(api, 1)
    api.service.store.publish_checkpoint()
    for lang in ("vi", "en"):
        answer = api.client.get(f"/p/{PRODUCT['id']}?lang={lang}", headers=HTML)
        assert answer.status_code == 200
        assert len(answer.content) < MAX_PAGE
        page = Page(answer.text)
        assert [h for h in page.headings if h[0] == "h1"] == [("h1", page.fields["text:product"])]
        assert page.fields["stars"] == "5"
        assert "mien-2026-001" in answer.text  # its batch, linked
        assert 'href="/b/mien-2026-001' in answer.text
        assert "openstreetmap.org" in answer.text
        assert "<script" not in answer.text
        assert page.fields["text:historical"]  # the address before the 2025 reform
        assert page.fields["rating"]  # the history, from the ledger
        assert "verdict-mismatch" not in page.fields
        entries = re.findall(r'data-proof="(\w+)"', answer.text)
        assert entries
        assert set(entries) == {"verified"}
        assert 'property="og:title"' in answer.text
        assert "twitter:card" in answer.text
    assert page.fields["text:product"] == PRODUCT["name_vi"] if lang == "vi" else True
    assert api.client.get("/p/no-such-product", headers=HTML).status_code == 404
    producer = api.client.get(f"/producers/{PRODUCER['id']}", headers=HTML)
    assert producer.status_code == 200
    assert f'data-product="{PRODUCT["id"]}"' in producer.text
    assert set(re.findall(r'data-proof="(\w+)"', producer.text)) == {"verified"}
    assert api.client.get("/producers/nobody", headers=HTML).status_code == 404


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_row_that_differs_from_its_entry_is_flagged_on_the_product_page(api: Api) -> None:
    issue_labels(api, 1)
    api.service.store.publish_checkpoint()
    with api.service.engine.begin() as conn:
        conn.execute(
            text("UPDATE product SET description = 'invented' WHERE id = :id"),
            {"id": PRODUCT["id"]},
        )
    page = Page(api.client.get(f"/p/{PRODUCT['id']}", headers=HTML).text)
    assert "product.description" in page.fields["verdict-mismatch"]


# -- the ledger ------------------------------------------------------------------------------
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_downloaded_bundle_verifies_with_the_pinned_root_key(api: Api, tmp_path: Path) -> None:
    issue_labels(api, 2)
    api.service.store.publish_checkpoint()
    page = api.client.get("/ledger", headers=HTML)
    assert page.status_code == 200
    assert len(page.content) < MAX_PAGE
    parsed = Page(page.text)
    root_key = parsed.fields["text:root-key"]
    assert root_key == api.service.store.root_key_id
    assert int(parsed.fields["text:size"].replace(".", "")) == api.service.store.size()
    assert "ocop-trace verify --bundle" in page.text
    bundle = tmp_path / "ledger.jsonl"
    with api.client.stream("GET", "/ledger/bundle.jsonl") as answer:
        assert answer.status_code == 200
        with bundle.open("wb") as handle:
            for chunk in answer.iter_bytes():
                handle.write(chunk)
    checkpoint = tmp_path / "checkpoint.txt"
    checkpoint.write_text(api.client.get("/checkpoint").text)
    command = str(Path(sys.executable).parent / "ocop-trace")  # the installed command
    verify = [command, "verify", "--bundle", str(bundle)]
    done = subprocess.run(
        [*verify, "--root-key", root_key, "--trusted-checkpoint", str(checkpoint)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    wrong = subprocess.run(
        [*verify, "--root-key", "0" * 64], capture_output=True, text=True, timeout=120
    )
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_recent_entries_are_paginated_newest_first(api: Api) -> None:
    _catalogue(api)
    size = api.service.store.size()
    first = api.client.get("/ledger", headers=HTML).text
    indices = [int(i) for i in re.findall(r'<tr data-index="(\d+)"', first)]
    assert indices == list(range(size - 1, max(-1, size - 21), -1))
    if size > 20:
        second = api.client.get("/ledger?page=2", headers=HTML).text
        assert int(re.findall(r'<tr data-index="(\d+)"', second)[0]) == size - 21
    assert api.client.get("/ledger?page=999", headers=HTML).status_code == 200


# -- photos and sharing ----------------------------------------------------------------------
def _jpeg(color: str, size: tuple[int, int] = (1200, 800)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_stored_photo_is_served_immutable_sized_and_checked_against_the_signed_hash(
    api: Api,
) -> None:
    files = {"file": ("anh.jpg", _jpeg("green"), "image/jpeg")}
    assert api.client.post("/api/v1/photos", files=files).status_code == 401
    answer = api.client.post("/api/v1/photos", files=files, headers=api.as_("council"))
    assert answer.status_code == 201, answer.text
    uploaded = answer.json()
    assert uploaded["image_url"].endswith(f"/photos/{uploaded['image_sha256']}.jpg")
    again = photo_store.store(api.service.engine, _jpeg("green"))
    assert again.sha256 == uploaded["image_sha256"]  # stored once, named by its content
    with api.service.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM photo")).scalar_one() == 1
    not_photo = {"file": ("anh.jpg", b"GIF89a not really", "image/jpeg")}
    refused = api.client.post("/api/v1/photos", files=not_photo, headers=api.as_("council"))
    assert refused.status_code == 422
    photo = again
    product = {
        **PRODUCTS[1],
        "producer_id": "htx-tai-hoan",
        # Signed as the service's https address (a development server's is http).
        "image_url": "https://trace.example" + uploaded["image_url"].partition("8000")[2],
        "image_sha256": uploaded["image_sha256"],
    }
    assert api.post("/api/v1/products", product, "council").status_code == 201
    for name, side in ((f"{photo.sha256}.jpg", 1200), (f"{photo.sha256}-thumb.jpg", 320)):
        answer = api.client.get(f"/photos/{name}")
        assert answer.status_code == 200
        assert "immutable" in answer.headers["cache-control"]
        assert "max-age=31536000" in answer.headers["cache-control"]
        assert max(Image.open(io.BytesIO(answer.content)).size) == side
    assert api.client.get(f"/photos/{'0' * 64}.jpg").status_code == 404
    assert api.client.get("/photos/../../etc/passwd").status_code == 404
    answer = api.client.get(f"/p/{product['id']}", headers=HTML)
    page = Page(answer.text)
    assert page.fields["photo"] == "signed"
    assert f'src="/photos/{photo.sha256}-page.jpg"' in answer.text
    home = api.client.get("/", headers=HTML).text
    assert f'src="/photos/{photo.sha256}-thumb.jpg"' in home
    # The stored bytes changed behind the statement's back: the page says so.
    with api.service.engine.begin() as conn:
        conn.execute(
            text("UPDATE photo SET data = :d WHERE sha256 = :s"),
            {"d": _jpeg("red"), "s": photo.sha256},
        )
    page = Page(api.client.get(f"/p/{product['id']}", headers=HTML).text)
    assert page.fields["photo"] == "differs"
    assert api.client.get(f"/photos/{photo.sha256}.jpg").status_code == 404


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sitemap_robots_favicon_and_print_styles(api: Api) -> None:
    _catalogue(api)
    sitemap = api.client.get("/sitemap.xml")
    assert sitemap.status_code == 200
    assert "/p/tra-hoa-vang</loc>" in sitemap.text
    assert "/producers/htx-tan-son</loc>" in sitemap.text
    robots = api.client.get("/robots.txt").text
    assert "Disallow: /l/" in robots
    assert "Sitemap: " in robots
    assert api.client.get("/favicon.ico").headers["content-type"].startswith("image/svg")
    home = api.client.get("/", headers=HTML).text
    assert "@media print" in home
    assert 'rel="icon"' in home
    assert "og:title" in home


def test_search_helpers_fold_the_way_both_databases_are_fed() -> None:
    assert search.fold("Miến dong ĐẶC SẢN Đồng Hỷ") == "mien dong dac san dong hy"
    assert search.terms("  Trà—xanh!! ") == ["tra", "xanh"]
    assert search.terms("a " * 50) == ["a"] * search.MAX_TERMS


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_vietnamese_site_pages_carry_no_english(api: Api) -> None:
    from test_i18n import _english_in

    issue_labels(api, 1)
    human = parse_canonical(issued_serials(api)[0]).human
    typo = human[:5] + ("2" if human[5] != "2" else "3") + human[6:]
    for path in (
        "/",
        "/?q=tra&stars=5",
        "/?q=xyzzy",
        "/code",
        f"/code?code={typo}",
        f"/p/{PRODUCT['id']}",
        f"/producers/{PRODUCER['id']}",
    ):
        _, page, _ = scan(api, path)
        assert page.lang == "vi", path
        assert _english_in(page.all_text) == [], path


def test_the_demo_prints_the_public_sites_pages(env: Path) -> None:
    from typer.testing import CliRunner

    from ocop_trace.cli import app

    result = CliRunner().invoke(app, ["demo", "--dir", "d"])
    assert result.exit_code == 0, result.stdout
    out = result.stdout
    assert "The public site" in out
    for what, path in (
        ("the catalogue", "/"),
        ("a search without diacritics", "/?q=mien+dong"),
        ("a product page", "/p/mien-dong-tai-hoan"),
        ("the ledger in the open", "/ledger"),
    ):
        assert f"  {what}: http://127.0.0.1:8000{path}\n" in out
    typed = next(line for line in out.splitlines() if "a printed code typed" in line)
    assert "/code?code=" in typed
