"""What the site offers to other programs: photos, sitemap.xml, robots.txt and the favicon.

Photos are addressed by their SHA-256 (/photos/{sha256}.jpg, -thumb.jpg, -page.jpg), so a
copy never goes stale: they are cached for a year, marked immutable.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import select

from ocop_trace import photo_store
from ocop_trace.errors import NotFound
from ocop_trace.models import PRODUCER, PRODUCT

router = APIRouter(include_in_schema=False)
IMMUTABLE = "public, max-age=31536000, immutable"
_PHOTO = re.compile(r"^([0-9a-f]{64})(?:-(thumb|page))?\.jpg$")
SITEMAP_LIMIT = 50_000  # the sitemap protocol's limit per file
# A star on the province's green: drawn here, so the favicon loads nothing from elsewhere.
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="6" fill="#0b6b2e"/>'
    '<path d="M16 5l3.2 7 7.6.7-5.8 5 1.8 7.5L16 21.3 9.2 25.2 11 17.7l-5.8-5 7.6-.7z" '
    'fill="#ffd34d"/></svg>'
)


@router.get("/photos/{name}")
async def photo(name: str, request: Request) -> Response:
    found = _PHOTO.match(name)
    if found is None:
        raise NotFound("no such photo")
    sha256, variant = found.groups()
    if request.headers.get("if-none-match") == f'"{name}"':
        return Response(status_code=304, headers={"Cache-Control": IMMUTABLE, "ETag": f'"{name}"'})
    data = await run_in_threadpool(_read, request, sha256)
    if data is None:
        raise NotFound("no such photo")
    if variant is not None:
        data = await run_in_threadpool(photo_store.resized, data, photo_store.VARIANTS[variant])
    headers = {"Cache-Control": IMMUTABLE, "ETag": f'"{name}"'}
    return Response(data, media_type="image/jpeg", headers=headers)


def _read(request: Request, sha256: str) -> bytes | None:
    with request.app.state.service.engine.connect() as conn:
        return photo_store.original(conn, sha256)


@router.get("/robots.txt")
def robots(request: Request) -> Response:
    site = request.app.state.settings.public_url.rstrip("/")
    # Label pages carry serials and are not for indexing; the catalogue is.
    text = (
        "User-agent: *\nDisallow: /l/\nDisallow: /01/\nDisallow: /api/\nDisallow: /report\n"
        f"Allow: /\nSitemap: {site}/sitemap.xml\n"
    )
    return Response(text, media_type="text/plain; charset=utf-8")


@router.get("/sitemap.xml")
def sitemap(request: Request) -> Response:
    site = request.app.state.settings.public_url.rstrip("/")
    with request.app.state.service.engine.connect() as conn:
        products = conn.execute(select(PRODUCT.c.id).order_by(PRODUCT.c.id)).scalars().all()
        producers = conn.execute(select(PRODUCER.c.id).order_by(PRODUCER.c.id)).scalars().all()
    paths = ["/", "/ledger", "/code"]
    paths += [f"/p/{p}" for p in products] + [f"/producers/{p}" for p in producers]
    urls = "".join(f"<url><loc>{escape(site + path)}</loc></url>" for path in paths[:SITEMAP_LIMIT])
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>\n'
    )
    return Response(body, media_type="application/xml")


@router.get("/favicon.svg")
@router.get("/favicon.ico")
def favicon() -> Response:
    headers = {"Cache-Control": "public, max-age=86400"}
    return Response(FAVICON, media_type="image/svg+xml", headers=headers)
