"""Helpers for the staff app's tests: a browser-like client per user, forms sent as a browser
sends them (with the page's CSRF token and idempotency key)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from support import PASSWORD, Api

HTML = {"Accept": "text/html"}
_HIDDEN = re.compile(r'<input type="hidden" name="(csrf|idem)" value="([^"]*)">')


def browser(api: Api) -> TestClient:
    """A new client on the same app: its own cookie jar, like another person's browser."""
    return TestClient(api.client.app, follow_redirects=False, headers=HTML)


def tokens(page: str, form: str | None = None) -> dict[str, str]:
    """The hidden csrf and idem fields of a page's form (the one with data-form=`form`)."""
    if form is not None:
        start = page.index(f'data-form="{form}"')
        page = page[start : page.index("</form>", start)]
    return dict(_HIDDEN.findall(page))


def post_form(
    client: TestClient, page_url: str, action: str, fields: dict[str, Any], form: str | None = None
) -> Any:
    """Open the page, then send its form with `fields` (and the page's hidden tokens)."""
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    return client.post(action, data={**tokens(page.text, form), **fields})


def sign_in(api: Api, username: str, password: str = PASSWORD) -> TestClient:
    client = browser(api)
    answer = post_form(
        client, "/app/login", "/app/login", {"username": username, "password": password}
    )
    assert answer.status_code == 303, answer.text
    return client


def field_error(page: str, name: str) -> str:
    """The message shown beside a field ('' when none)."""
    found = re.search(rf'data-field="error-{re.escape(name)}">([^<]*)<', page)
    return found.group(1) if found else ""
