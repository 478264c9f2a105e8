"""The council's product photo (issue 12): uploaded with the product's form, cleaned and
kept by photos.clean / photo_store, signed in the product's statements, refused beside the
field in the user's language with nothing written."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import open_api
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from sqlalchemy import func, select
from support import PASSWORD, Api
from webapp_support import HTML, field_error, post_form, sign_in, tokens

from ocop_trace import limits, photos
from ocop_trace.models import PRODUCER, PRODUCT, UPDATE_HISTORY
from ocop_trace.photo_store import PHOTO

SITE = "https://truyxuat.example.vn"
PAGE = "/app/producers/htx-tai-hoan"
REGISTER = f"{PAGE}/products"
PRODUCT_FORM = {
    "name_vi": "Miến dong Tài Hoan",
    "name_en": "Tai Hoan arrowroot noodles",
    "product_set": "food.processed_cereals",
    "gtin": "",
    "description": "Miến dong làm thủ công.",
}
PRODUCT_ID = "mien-dong-tai-hoan"
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def site(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The served app at an https public address, as it runs for real (a product's photo
    link is https)."""
    monkeypatch.setenv("TRACE_PUBLIC_URL", SITE)
    opened = open_api(db_url, tmp_path / "keys")
    yield opened
    opened.client.close()
    opened.service.engine.dispose()


def _https_sign_in(api: Api, username: str) -> TestClient:
    """Signed in over https, as the site's Secure cookies need."""
    client = TestClient(
        api.client.app, base_url="https://testserver", follow_redirects=False, headers=HTML
    )
    fields = {"username": username, "password": PASSWORD}
    assert post_form(client, "/app/login", "/app/login", fields).status_code == 303
    return client


def _jpeg_with_gps(color: str = "green") -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (21.0, 35.0, 12.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (105.0, 50.0, 30.0),
    }
    out = io.BytesIO()
    Image.new("RGB", (2400, 1200), color).save(out, "JPEG", exif=exif)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # it has GPS
    return data


def _png(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), color).save(out, "PNG")
    return out.getvalue()


def _send(client: Any, action: str, form: str, fields: dict[str, str], photo: Any) -> Any:
    """The council's producer page, then one of its forms, with a file as a browser sends."""
    page = client.get(PAGE)
    assert page.status_code == 200, page.text
    files = {"photo": photo} if photo is not None else {"photo": ("", b"", "")}
    return client.post(action, data={**tokens(page.text, form), **fields}, files=files)


def _product(api: Api) -> Any:
    with api.service.engine.connect() as conn:
        return conn.execute(select(PRODUCT).where(PRODUCT.c.id == PRODUCT_ID)).first()


def _stored(api: Api) -> dict[str, bytes]:
    with api.service.engine.connect() as conn:
        return {r.sha256: bytes(r.data) for r in conn.execute(select(PHOTO)).all()}


def _history(api: Api) -> list[str]:
    with api.service.engine.connect() as conn:
        return list(
            conn.execute(
                select(UPDATE_HISTORY.c.changes)
                .where(UPDATE_HISTORY.c.subject == "product")
                .order_by(UPDATE_HISTORY.c.entry_index)
            ).scalars()
        )


def test_a_product_registered_with_a_photo_signs_the_cleaned_stored_photo(site: Api) -> None:
    council = _https_sign_in(site, "council")
    made = _send(
        council, REGISTER, "product", PRODUCT_FORM, ("anh.jpg", _jpeg_with_gps(), "image/jpeg")
    )
    assert made.status_code == 303, made.text
    row = _product(site)
    stored = _stored(site)
    assert list(stored) == [row.image_sha256]
    data = stored[row.image_sha256]
    assert hashlib.sha256(data).hexdigest() == row.image_sha256
    assert row.image_url == f"{SITE}/photos/{row.image_sha256}.jpg"
    kept = Image.open(io.BytesIO(data))
    assert (kept.format, max(kept.size)) == ("JPEG", photos.MAX_SIDE)  # re-encoded, smaller
    assert not kept.getexif()  # no GPS, no camera
    assert b"Exif" not in data
    assert b"PhoneMaker" not in data
    public = site.client.get(f"/p/{PRODUCT_ID}", headers={"Accept": "text/html"}).text
    assert f'src="/photos/{row.image_sha256}-page.jpg"' in public
    assert 'data-photo="signed"' in public
    assert f'src="/photos/{row.image_sha256}-thumb.jpg"' in council.get(PAGE).text


def test_an_edit_with_a_new_photo_appends_an_update_the_history_shows(site: Api) -> None:
    council = _https_sign_in(site, "council")
    first = ("a.png", _png("red"), "image/png")
    assert _send(council, REGISTER, "product", PRODUCT_FORM, first).status_code == 303
    old = _product(site).image_sha256
    size = site.service.store.size()
    edit = {k: PRODUCT_FORM[k] for k in ("name_vi", "name_en", "gtin")}
    action = f"/app/products/{PRODUCT_ID}"
    second = ("b.webp.jpg", _png("blue"), "image/jpeg")  # named wrongly: read by its content
    assert _send(council, action, "product-edit", edit, second).status_code == 303
    new = _product(site).image_sha256
    assert new not in ("", old)
    assert site.service.store.size() == size + 1
    assert set(_stored(site)) == {old, new}
    assert json.loads(_history(site)[-1])["image_sha256"] == new
    page = council.get(PAGE).text
    assert f"{old} → {new}" in page  # the product's history, on its page
    # No file: the photo stays (only the name changes).
    renamed = {**edit, "name_en": "Arrowroot noodles"}
    assert _send(council, action, "product-edit", renamed, None).status_code == 303
    assert (_product(site).image_sha256, _product(site).name_en) == (new, "Arrowroot noodles")
    unchanged = _send(council, action, "product-edit", renamed, second)  # the same photo
    assert unchanged.status_code == 422
    assert "Chưa có thay đổi nào để lưu." in unchanged.text
    removed = _send(council, action, "product-edit", {**renamed, "remove_photo": "yes"}, None)
    assert removed.status_code == 303
    assert (_product(site).image_url, _product(site).image_sha256) == ("", "")
    assert json.loads(_history(site)[-1]) == {"image_url": "", "image_sha256": ""}


def test_a_text_file_named_jpg_is_refused_beside_the_field_and_nothing_written(
    site: Api,
) -> None:
    council = _https_sign_in(site, "council")
    before = site.service.store.size()
    fake = ("anh.jpg", "đây là chữ, không phải ảnh".encode(), "image/jpeg")
    answer = _send(council, REGISTER, "product", PRODUCT_FORM, fake)
    assert answer.status_code == 422
    assert field_error(answer.text, "photo") == "Tệp này không phải ảnh JPEG, PNG hay WebP."
    assert 'value="Tai Hoan arrowroot noodles"' in answer.text  # what was typed is kept
    assert "Miến dong làm thủ công.</textarea>" in answer.text
    assert _product(site) is None
    assert site.service.store.size() == before
    assert _stored(site) == {}
    # A bad field and a good photo: the photo is not kept either.
    bad_gtin = {**PRODUCT_FORM, "gtin": "8936012345675"}
    refused = _send(council, REGISTER, "product", bad_gtin, ("a.png", _png("red"), "image/png"))
    assert refused.status_code == 422
    assert field_error(refused.text, "gtin")
    assert _stored(site) == {}


@sqlite_only
def test_a_photo_too_large_or_a_decompression_bomb_is_refused_in_words(site: Api) -> None:
    council = _https_sign_in(site, "council")
    big = ("to.jpg", b"\xff" * (photos.MAX_BYTES + 1), "image/jpeg")
    answer = _send(council, REGISTER, "product", PRODUCT_FORM, big)
    assert answer.status_code == 422
    assert field_error(answer.text, "photo") == "Ảnh lớn quá: tối đa 10 MB."
    bomb = io.BytesIO()
    Image.new("1", (10_000, 6_000)).save(bomb, "PNG")  # 60 million pixels in a few KB
    assert len(bomb.getvalue()) < 100_000
    answer = _send(council, REGISTER, "product", PRODUCT_FORM, ("b.png", bomb.getvalue(), ""))
    assert answer.status_code == 422
    assert field_error(answer.text, "photo").startswith("Ảnh có quá nhiều điểm ảnh.")
    # A body over the upload limit never reaches the form: a page says so, not JSON.
    huge = ("h.jpg", b"\xff" * limits.UPLOAD_BYTES, "image/jpeg")
    answer = _send(council, REGISTER, "product", PRODUCT_FORM, huge)
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("text/html")
    assert "Nội dung gửi lên lớn quá" in answer.text
    assert _product(site) is None
    assert _stored(site) == {}


@sqlite_only
def test_a_producer_cannot_use_the_councils_product_form(site: Api) -> None:
    producer = _https_sign_in(site, "producer")
    page = producer.get("/app/")
    answer = producer.post(
        REGISTER,
        data={**tokens(page.text), **PRODUCT_FORM},
        files={"photo": ("a.png", _png("red"), "image/png")},
    )
    assert answer.status_code == 403
    assert _product(site) is None
    assert _stored(site) == {}


@sqlite_only
def test_without_an_https_public_address_the_photo_is_refused_not_half_signed(api: Api) -> None:
    council = sign_in(api, "council")
    answer = _send(council, REGISTER, "product", PRODUCT_FORM, ("a.png", _png("red"), "image/png"))
    assert answer.status_code == 422
    assert "https://" in field_error(answer.text, "photo")
    assert _product(api) is None
    with api.service.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(PHOTO)).scalar_one() == 0


@sqlite_only
def test_a_bad_photo_on_the_edit_form_is_refused_beside_it(site: Api) -> None:
    council = _https_sign_in(site, "council")
    assert _send(council, REGISTER, "product", PRODUCT_FORM, None).status_code == 303
    size = site.service.store.size()
    edit = {"name_vi": PRODUCT_FORM["name_vi"], "name_en": "Renamed", "gtin": ""}
    fake = ("anh.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/png")
    answer = _send(council, f"/app/products/{PRODUCT_ID}", "product-edit", edit, fake)
    assert answer.status_code == 422
    assert field_error(answer.text, "photo") == "Tệp này không phải ảnh JPEG, PNG hay WebP."
    assert 'value="Renamed"' in answer.text  # what was typed is kept
    assert site.service.store.size() == size
    assert _product(site).name_en == PRODUCT_FORM["name_en"]


def test_a_producer_registered_and_edited_with_a_photo(site: Api) -> None:
    council = _https_sign_in(site, "council")
    fields = {
        "name": "HTX Chè Tân Cương",
        "type": "cooperative",
        "registration_no": "",
        "contact": "",
        "province": "Thái Nguyên",
        "commune": "Tân Cương",
        "line": "",
    }
    page = council.get("/app/producers")
    made = council.post(
        "/app/producers",
        data={**tokens(page.text, "producer"), **fields},
        files={"photo": ("htx.jpg", _jpeg_with_gps("olive"), "image/jpeg")},
    )
    assert made.status_code == 303, made.text
    with site.service.engine.connect() as conn:
        row = conn.execute(select(PRODUCER).where(PRODUCER.c.id == "htx-che-tan-cuong")).one()
    assert row.image_url == f"{SITE}/photos/{row.image_sha256}.jpg"
    assert row.image_sha256 in _stored(site)
    path = "/app/producers/htx-che-tan-cuong"
    shown = council.get(path).text
    assert f'src="/photos/{row.image_sha256}-thumb.jpg"' in shown
    edit = {"name": fields["name"], "contact": ""}
    changed = council.post(
        path,
        data={**tokens(shown, "producer-edit"), **edit},
        files={"photo": ("b.png", _png("navy"), "image/png")},
    )
    assert changed.status_code == 303, changed.text
    with site.service.engine.connect() as conn:
        new = conn.execute(
            select(PRODUCER.c.image_sha256).where(PRODUCER.c.id == "htx-che-tan-cuong")
        ).scalar_one()
        update = conn.execute(
            select(UPDATE_HISTORY.c.changes).where(UPDATE_HISTORY.c.subject == "producer")
        ).scalar_one()
    assert new not in ("", row.image_sha256)
    assert json.loads(update)["image_sha256"] == new
