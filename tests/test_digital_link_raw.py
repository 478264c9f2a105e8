"""The raw-path entry point (what an ASGI server received), trailing slashes, link types."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ocop_trace.digital_link import (
    DigitalLinkError,
    build_digital_link,
    parse_digital_link,
    parse_raw_digital_link,
)
from ocop_trace.gs1_lint import CSET82
from ocop_trace.link_types import link_type_uri, normalise_link_type

GTIN = "09520123456788"
SPECIALS = sorted(c for c in CSET82 if not c.isalnum())
LOTS = [f"L{c}7.A" for c in SPECIALS] + ["/", "%", "%25", "a/../b", "?x=1&y", '"<>"']


async def echo(request: Request) -> JSONResponse:
    scope = request.scope
    link = parse_raw_digital_link(
        scope["scheme"], request.headers["host"], scope["raw_path"], scope["query_string"]
    )
    return JSONResponse({"lot": link.lot, "serial": link.serial, "attrs": link.attributes})


CLIENT = TestClient(Starlette(routes=[Route("/{rest:path}", echo)]))


@pytest.mark.parametrize("lot", LOTS)
def test_every_cset82_character_reads_back_from_the_raw_path(lot: str) -> None:
    uri = build_digital_link("https://id.example.vn", GTIN, lot=lot, serial="S1")
    path, _, query = uri.removeprefix("https://id.example.vn").partition("?")
    link = parse_raw_digital_link("https", "id.example.vn", path.encode(), query.encode())
    assert (link.lot, link.serial, link.canonical_uri()) == (lot, "S1", uri)


@pytest.mark.parametrize("lot", LOTS)
def test_through_an_asgi_server(lot: str) -> None:
    uri = build_digital_link("http://testserver", GTIN, lot, "S1", attributes={"99": lot})
    answer = CLIENT.get(uri)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"lot": lot, "serial": "S1", "attrs": {"99": lot}}


def test_the_decoded_path_is_not_what_was_sent() -> None:
    """Why the raw path matters: decoding first turns L%2F7 into two path segments."""
    with pytest.raises(DigitalLinkError):
        parse_digital_link(f"https://a/01/{GTIN}/10/L/7/21/S1")
    link = parse_raw_digital_link("https", "a", f"/01/{GTIN}/10/L%2F7/21/S1")
    assert link.lot == "L/7"


def test_trailing_slash() -> None:
    raw = parse_raw_digital_link("https", "a", f"/01/{GTIN}/10/L1/".encode())
    assert (raw.lot, raw.canonical_uri()) == ("L1", f"https://a/01/{GTIN}/10/L1")
    assert parse_digital_link(f"https://a/01/{GTIN}/", allow_trailing_slash=True).gtin == GTIN
    with pytest.raises(DigitalLinkError, match="must not end with '/'"):
        parse_digital_link(f"https://a/01/{GTIN}/")  # GS1's syntax engine refuses it
    for bad in (f"/01/{GTIN}//", f"/01/{GTIN}/10/"):
        with pytest.raises(DigitalLinkError):
            parse_raw_digital_link("https", "a", bad)


@pytest.mark.parametrize(
    ("given", "curie"),
    [
        ("https://gs1.org/voc/pip", "gs1:pip"),
        ("http://gs1.org/voc/pip", "gs1:pip"),
        ("https://www.gs1.org/voc/certificationInfo", "gs1:certificationInfo"),
        ("gs1:defaultLink", "gs1:defaultLink"),
        (" gs1:pip ", "gs1:pip"),
        ("all", "all"),
        ("linkset", "linkset"),
        ("https://example.vn/voc/recipe", "https://example.vn/voc/recipe"),
    ],
)
def test_link_types(given: str, curie: str) -> None:
    assert normalise_link_type(given) == curie
    expected = curie.replace("gs1:", "https://gs1.org/voc/") if curie.startswith("gs1:") else curie
    assert link_type_uri(given) == expected


@pytest.mark.parametrize("bad", ["pip", "gs1:", "gs1:p p", "https://gs1.org/voc/"])
def test_bad_link_types(bad: str) -> None:
    with pytest.raises(DigitalLinkError, match="linkType"):
        normalise_link_type(bad)
