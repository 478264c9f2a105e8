"""/docs without the internet: Swagger UI served from its installed package, no CDN.

The page runs no inline script (the Content-Security-Policy allows only the service's own
files): Swagger UI's bundle and a small initializer, both served here. The groups are
ordered as a user meets them, and the bearer scheme is declared so "Authorize" works.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPBearer
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"

# The order Swagger UI shows the groups in: signing in first, then what a user does next.
TAGS = [
    {"name": "auth", "description": "Sign in for a token; users, tokens (council: accounts)"},
    {"name": "catalog", "description": "Producers, their keys, products and OCOP ratings"},
    {"name": "batches", "description": "Batches with lineage, events, recalls; inspections"},
    {"name": "labels", "description": "Issue labels; what their QR links resolve to"},
    {"name": "reports", "description": "Suspected fakes reported by shoppers"},
    {"name": "epcis", "description": "GS1 EPCIS 2.0 events out (JSON-LD) and in (capture)"},
    {"name": "spreadsheets", "description": "A council's product lists in and out (xlsx, csv)"},
    {
        "name": "ledger",
        "description": "Signed checkpoints, entries with proofs, offline statements",
    },
    {"name": "health", "description": "Is the service up"},
]

# Declared on every route through the caller dependency; read by api.deps.get_principal.
bearer = HTTPBearer(
    auto_error=False,
    description="An API token from POST /api/v1/auth/token, sent as 'Bearer <token>'",
)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OCOP trace API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head><body><div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>
"""

_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"""


def install(app: FastAPI) -> None:
    """Serve /docs and its assets from the swagger-ui-bundle package."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_PAGE.format(assets=ASSETS))

    @app.get("/docs/init.js", include_in_schema=False)
    async def init() -> Response:
        return Response(_INIT, media_type="text/javascript")
