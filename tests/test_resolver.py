"""The GS1-Conformant resolver: every label resolves, lots checked, linksets, link types, CORS.

Each test is a point of issue 17 (GS1's resolver test suite and our own reading of the
standard's SHALLs); docs/digital-link.md says what is covered.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import zxingcpp
from pages import GTIN, HTML, JSON
from PIL import Image
from sqlalchemy import text
from support import BATCH, PRODUCT, RATING, Api, issued_serials

from ledger import keys
from ledger.statement import sign_statement
from ocop_trace.accounts import Principal
from ocop_trace.dl_compression import compress_digital_link
from ocop_trace.gs1_lint import CSET82
from ocop_trace.models import BatchCreate

SPECIALS = sorted(c for c in CSET82 if not c.isalnum())
LINKSET = "application/linkset+json"
CONTEXT = (
    "<https://ref.gs1.org/standards/resolver/linkset-context>; "
    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
)
VOC = "https://gs1.org/voc/"

# GS1's rules for a linkset (https://ref.gs1.org/standards/resolver/linkset-schema) and for
# the description file (https://ref.gs1.org/standards/resolver/description-file-schema),
# written out here as JSON Schema: what the resolver must meet, checked offline.
_URL = {"type": "string", "pattern": "^https?://[a-zA-Z0-9./]+"}
LINK_OBJECT = {
    "type": "object",
    "properties": {
        "href": _URL,
        "title": {"type": "string"},
        "hreflang": {
            "type": "array",
            "items": {"type": "string", "pattern": r"(^\w{2}$)|(^\w{2}-\w{2}$)"},
        },
        "type": {"type": "string", "pattern": r"\w+/[-+.\w]+"},
        "context": {"type": "array"},
        "fwqs": {"type": "boolean"},
        "public": {"type": "boolean"},
    },
    "required": ["href", "title"],
    "additionalProperties": False,
}
LINKSET_SCHEMA = {
    "type": "object",
    "properties": {
        "linkset": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"anchor": _URL, "itemDescription": {"type": "string"}},
                "patternProperties": {
                    r"(?!(anchor|itemDescription))^([a-z-]+$)|(^https?://[a-zA-Z0-9./]+$)": {
                        "type": "array",
                        "items": LINK_OBJECT,
                    }
                },
                "required": ["anchor", "itemDescription"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["linkset"],
    "additionalProperties": False,
}
PRIMARY_KEYS = ["all", "01", "8006", "8013", "8010", "410", "411", "412", "413", "414", "415"]
PRIMARY_KEYS += ["417", "8017", "8018", "255", "00", "253", "401", "402", "8003", "8004"]
DESCRIPTION_SCHEMA = {
    "type": "object",
    "properties": {
        "resolverRoot": {"type": "string", "format": "uri"},
        "supportedPrimaryKeys": {
            "type": "array",
            "items": {"type": "string", "enum": PRIMARY_KEYS},
        },
        "name": {"type": "string"},
        "supportedLinkType": {
            "type": "array",
            "items": {
                "properties": {
                    "namespace": {"type": "string", "format": "uri"},
                    "prefix": {"type": "string", "pattern": "^[a-zA-Z_][A-Za-z0-9_-]*?:$"},
                }
            },
        },
        "linkTypeDefaultCanBeLinkset": {"type": "boolean"},
        "jsonLdContextLocation": {"type": "string", "format": "uri"},
    },
    "required": ["resolverRoot", "supportedPrimaryKeys"],
}


def _root(api: Api) -> str:
    return api.settings.public_url.rstrip("/")


def _product(api: Api) -> None:
    assert api.post("/api/v1/products", PRODUCT, "council").status_code == 201
    assert api.post("/api/v1/ratings", RATING, "council").status_code == 201


def _labelled(api: Api) -> str:
    """The product, its batch (lot L2601) and one label: its serial."""
    _product(api)
    assert api.post("/api/v1/batches", BATCH, "producer").status_code == 201
    answer = api.post(f"/api/v1/batches/{BATCH['id']}/labels", {"count": 1}, "producer")
    assert answer.status_code == 201, answer.text
    api.service.store.publish_checkpoint()
    return issued_serials(api)[0]


def _decode(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    assert len(found) == 1
    return str(found[0].text)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# -- 1. every label the service prints resolves -------------------------------------------
def test_labels_for_lots_with_every_cset82_special_character_decode_and_resolve(
    api: Api,
) -> None:
    _product(api)
    for index, char in enumerate(SPECIALS):
        lot = f"L{char}7.A"
        batch = {**BATCH, "id": f"lot-{index}", "lot": lot}
        assert api.post("/api/v1/batches", batch, "producer").status_code == 201, lot
        answer = api.post(
            f"/api/v1/batches/lot-{index}/labels", {"count": 1, "format": "png"}, "producer"
        )
        assert answer.status_code == 201, (lot, answer.text)
        api.service.store.publish_checkpoint()
        url = _decode(answer.content)  # what a phone reads from the printed code
        assert url.startswith(_root(api) + f"/01/{GTIN}/10/")
        found = api.client.get(_path(url), headers=JSON)
        assert found.status_code == 200, (lot, url, found.text)
        assert found.json()["verdict"] == "genuine", lot
        assert found.json()["batch"]["lot"] == lot
        page = api.client.get(_path(url), headers=HTML)
        assert page.status_code == 200, lot
        assert 'data-verdict="genuine"' in page.text


# -- 2. lots and serials checked when the batch is registered -----------------------------
@pytest.mark.parametrize("lot", ["L~1", "L 1", "Lô1", "L#1", "L\\1", "L`1", "L{1}", "A" * 21])
def test_a_lot_gs1_does_not_allow_is_refused_at_registration(api: Api, lot: str) -> None:
    _product(api)
    answer = api.post("/api/v1/batches", {**BATCH, "lot": lot}, "producer")
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["field"] == "lot"
    assert "CSET 82" in error["message"] or "20" in error["message"]
    assert api.client.get(f"/api/v1/batches/{BATCH['id']}").status_code == 404


def test_the_use_case_and_statements_signed_elsewhere_refuse_it_too(api: Api) -> None:
    _product(api)
    producer = Principal(None, "producer", "producer", "htx-tai-hoan")
    with pytest.raises(ValueError, match="CSET 82"):
        api.service.register_batch(producer, BatchCreate(**{**BATCH, "lot": "L~1"}))
    key = keys.generate()
    key_id = keys.key_id(keys.public_bytes(key))
    registered = {"key_id": key_id, "name": "offline"}
    assert api.post("/api/v1/producers/htx-tai-hoan/keys", registered, "council").status_code == 201
    signed = sign_statement("batch.registered", {**BATCH, "lot": "L~1"}, key).to_json()
    answer = api.post("/api/v1/statements", [signed], "producer")
    assert answer.status_code == 422, answer.text
    assert "CSET 82" in answer.json()["error"]["message"]
    assert api.client.get(f"/api/v1/batches/{BATCH['id']}").status_code == 404


def test_a_stored_lot_gs1_does_not_allow_issues_no_serial(api: Api) -> None:
    """A lot from before the check (written here straight into the row) gets a 4xx, and no
    labels.issued entry or serial is left behind for labels never printed."""
    _product(api)
    assert api.post("/api/v1/batches", BATCH, "producer").status_code == 201
    with api.service.engine.begin() as conn:
        conn.execute(text("UPDATE batch SET lot = 'L~1' WHERE id = :id"), {"id": BATCH["id"]})
        before = conn.execute(text("SELECT count(*) FROM label_serial")).scalar()
    size = api.service.store.size()
    answer = api.post(f"/api/v1/batches/{BATCH['id']}/labels", {"count": 2}, "producer")
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["error"]["field"] == "lot"
    assert "CSET 82" in answer.json()["error"]["message"]
    with api.service.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM label_serial")).scalar() == before
    assert api.service.store.size() == size


# -- 3. lot-level links follow the scan page's verdict rules ------------------------------
def test_lot_links_recalled_unknown_and_without_a_serial(api: Api) -> None:
    serial = _labelled(api)
    lot_link = f"/01/{GTIN}/10/{BATCH['lot']}"
    assert api.client.get(lot_link, headers=JSON).json()["verdict"] == "product_info"
    assert api.client.get(f"/01/{GTIN}/10/INVENTED", headers=JSON).status_code == 404
    assert api.client.get(f"/01/{GTIN}/10/INVENTED?linkType=linkset").status_code == 404
    recall = {"reason": "nấm mốc"}
    assert api.post(f"/api/v1/batches/{BATCH['id']}/recall", recall, "producer").status_code == 201
    api.service.store.publish_checkpoint()
    for path in (lot_link, f"{lot_link}/21/{serial}", f"{lot_link}/"):
        assert api.client.get(path, headers=JSON).json()["verdict"] == "recalled", path
        page = api.client.get(path, headers=HTML)
        assert 'data-verdict="recalled"' in page.text, path
    assert api.client.get(f"/01/{GTIN}", headers=JSON).json()["verdict"] == "product_info"


# -- 4. the description file ---------------------------------------------------------------
def test_the_description_file_is_valid_and_readable_from_a_browser(api: Api) -> None:
    answer = api.client.get("/.well-known/gs1resolver", headers={"Origin": "https://app.example"})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    description = answer.json()
    jsonschema.validate(description, DESCRIPTION_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert description["supportedPrimaryKeys"] == ["01"]
    assert description["resolverRoot"] == _root(api)
    assert description["jsonLdContextLocation"].startswith("https://ref.gs1.org/")
    head = api.client.head("/.well-known/gs1resolver")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["access-control-allow-origin"] == "*"
    options = api.client.options("/.well-known/gs1resolver")
    assert options.status_code == 204
    for method in ("GET", "HEAD", "OPTIONS"):
        assert method in options.headers["access-control-allow-methods"]


# -- 4. linksets ---------------------------------------------------------------------------
def _linkset(api: Api, path: str, **headers: str) -> Any:
    answer = api.client.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == LINKSET
    assert CONTEXT in answer.headers["link"]
    assert "Accept" in answer.headers["vary"]
    assert answer.headers["access-control-allow-origin"] == "*"
    body = answer.json()
    jsonschema.validate(body, LINKSET_SCHEMA)
    return body


def test_the_linkset_of_a_label_has_every_level_with_titled_links(api: Api) -> None:
    serial = _labelled(api)
    root = _root(api)
    gtin_uri = f"{root}/01/{GTIN}"
    lot_uri = f"{gtin_uri}/10/{BATCH['lot']}"
    serial_uri = f"{lot_uri}/21/{serial}"
    path = f"/01/{GTIN}/10/{BATCH['lot']}/21/{serial}?17=271231"
    by_query = _linkset(api, path + "&linkType=linkset")
    assert _linkset(api, path, Accept=LINKSET) == by_query
    assert _linkset(api, path + "&linkType=all") == by_query  # the older name
    levels = {level["anchor"]: level for level in by_query["linkset"]}
    assert set(levels) == {gtin_uri, lot_uri, serial_uri}  # canonical, no data attributes
    for anchor, level in levels.items():
        assert PRODUCT["name_vi"] in level["itemDescription"]
        (default,) = level[VOC + "defaultLink"]
        assert set(default) == {"href", "title"}  # the default link has no other attribute
        assert default["href"] == anchor  # the page this very link opens
        described = [
            link["href"]
            for key, links in level.items()
            if key.startswith(VOC) and key != VOC + "defaultLink"
            for link in links
        ]
        assert default["href"] in described  # also under a descriptive link type
        for key, links in level.items():
            if key.startswith(VOC) and key != VOC + "defaultLink":
                for link in links:
                    assert link["title"], (key, link)
                    assert link["type"], (key, link)
                    assert link["hreflang"] == ["vi", "en"], (key, link)
    assert BATCH["lot"] in levels[lot_uri]["itemDescription"]
    traceability = levels[lot_uri][VOC + "traceability"]
    assert f"{root}/api/v1/batches/{BATCH['id']}/events" in {x["href"] for x in traceability}
    assert VOC + "certificationInfo" in levels[gtin_uri]
    english = _linkset(api, path + "&linkType=linkset", **{"Accept-Language": "en"})
    assert PRODUCT["name_en"] in english["linkset"][0]["itemDescription"]


def test_link_headers_are_well_formed_with_a_query(api: Api) -> None:
    _labelled(api)
    anchor = f"{_root(api)}/01/{GTIN}"
    for path in (f"/01/{GTIN}?17=271231", f"/01/{GTIN}/?17=271231&linkType=linkset"):
        link = api.client.get(path, headers=JSON).headers["link"]
        assert f'<{anchor}?linkType=linkset>; rel="linkset"; type="{LINKSET}"' in link
        assert link.count("?") == 1


# -- 4. link types and redirects -----------------------------------------------------------
def test_link_types_redirect_with_the_query_or_answer_404(api: Api) -> None:
    serial = _labelled(api)
    root = _root(api)
    lot_link = f"/01/{GTIN}/10/{BATCH['lot']}"
    ratings = f"{root}/api/v1/products/{PRODUCT['id']}/ratings"
    for link_type in ("gs1:certificationInfo", VOC + "certificationInfo"):
        answer = api.client.get(
            f"{lot_link}?17=271231&linkType={link_type}&foo=bar", follow_redirects=False
        )
        assert answer.status_code == 307, answer.text
        assert answer.headers["location"] == f"{ratings}?17=271231&foo=bar"
        assert f"<{root}{lot_link}?linkType=linkset>" in answer.headers["link"]
        assert answer.headers["access-control-allow-origin"] == "*"
    events = f"{root}/api/v1/batches/{BATCH['id']}/events"
    answer = api.client.get(
        f"{lot_link}/21/{serial}?linkType=gs1:traceability",
        headers={"Accept": "application/json"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == events  # the JSON one, as asked
    answer = api.client.get(f"{lot_link}?linkType=gs1:defaultLink", follow_redirects=False)
    assert answer.headers["location"] == f"{root}{lot_link}"
    for missing in ("gs1:epil", "https://gs1.org/voc/epil", "gs1:nothing", "x"):
        answer = api.client.get(f"{lot_link}?linkType={missing}", follow_redirects=False)
        assert answer.status_code == 404, missing
        assert answer.json()["error"]["field"] == "linkType"
    gtin_only = api.client.get(f"/01/{GTIN}?linkType=gs1:traceability", follow_redirects=False)
    assert gtin_only.status_code == 404  # a product link has no lot to trace


def test_a_trailing_slash_answers_as_without(api: Api) -> None:
    _labelled(api)
    for query in ("", "?linkType=gs1:pip", "?linkType=linkset"):
        plain = api.client.get(f"/01/{GTIN}{query}", follow_redirects=False)
        slash = api.client.get(f"/01/{GTIN}/{query}", follow_redirects=False)
        assert plain.status_code == slash.status_code
        assert plain.headers.get("location") == slash.headers.get("location")
        assert plain.headers["link"] == slash.headers["link"]


def test_a_broken_link_is_400_and_vary_is_on_every_answer(api: Api) -> None:
    serial = _labelled(api)
    label = f"/01/{GTIN}/10/{BATCH['lot']}/21/{serial}"
    assert api.client.get(label + "/foo", headers=JSON).status_code == 400
    for headers in (JSON, HTML):
        answer = api.client.get(label, headers=headers)
        assert {"Accept", "Accept-Language"} <= {
            v.strip() for v in answer.headers["vary"].split(",")
        }
        assert answer.headers["access-control-allow-origin"] == "*"
    options = api.client.options(label)
    assert options.status_code == 204
    assert "GET" in options.headers["access-control-allow-methods"]


# -- 4. compressed links -------------------------------------------------------------------
def test_a_compressed_link_is_read_in_place_with_its_uncompressed_form(api: Api) -> None:
    serial = _labelled(api)
    full = f"{_root(api)}/01/{GTIN}/10/{BATCH['lot']}/21/{serial}"
    compressed = compress_digital_link(full)
    path = _path(compressed)
    answer = api.client.get(path, headers=JSON, follow_redirects=False)
    assert answer.status_code == 200, answer.text
    assert answer.json()["verdict"] == "genuine"
    assert f'<{full}>; rel="owl:sameAs"' in answer.headers["link"]
    linkset = _linkset(api, path + "?linkType=linkset")
    assert full in {level["anchor"] for level in linkset["linkset"]}
    assert api.client.get(path, headers=HTML).status_code == 200
    assert api.client.get("/nothing-here", headers=JSON).status_code == 404
    assert api.client.get("/docs").status_code == 200  # the other pages are untouched


# -- 4. CORS on public reads ------------------------------------------------------------------
def test_every_public_get_allows_any_origin(api: Api) -> None:
    _labelled(api)
    for path in (
        f"/api/v1/products/{PRODUCT['id']}",
        f"/api/v1/batches/{BATCH['id']}",
        f"/01/{GTIN}",
        "/openapi.json",
    ):
        answer = api.client.get(path, headers={"Origin": "https://scanner.example"})
        assert answer.status_code == 200, path
        assert answer.headers["access-control-allow-origin"] == "*", path
        assert "Link" in answer.headers.get("access-control-expose-headers", ""), path


# -- 5. attributes retailers send ---------------------------------------------------------
@pytest.mark.parametrize(
    "suffix", ["?8008=26010112", "?7003=2601011230", "?4321=1", "/235/TPX-1", "?3103=000500"]
)
def test_attributes_retailers_send_are_accepted(api: Api, suffix: str) -> None:
    _labelled(api)
    answer = api.client.get(f"/01/{GTIN}{suffix}", headers=JSON)
    assert answer.status_code == 200, answer.text
    assert answer.json()["verdict"] == "product_info"
