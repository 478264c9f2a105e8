"""Who is signed in to the staff app: a session cookie holding a sign-in token, and its CSRF.

The session is an API token like any other (accounts.py), named "web": signing in goes
through the same throttled use case as the API's token route (throttle.SignIn), signing
out revokes it, and it expires after `session_hours` unused. The cookie is HttpOnly,
SameSite=Lax and, behind https, Secure. Forms carry a CSRF token matched to a cookie of
their own (csrf.py) and an idempotency key, so a form sent twice writes once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ocop_trace import csrf, i18n, idempotency
from ocop_trace.accounts import Principal, must_change_password, principal_for_token
from ocop_trace.errors import Forbidden, NotAuthenticated
from ocop_trace.templating import environment

SESSION_COOKIE = "ocop_session"
CSRF_COOKIE = "ocop_app_csrf"
LANG_COOKIE = "ocop_app_lang"
TOKEN_NAME = "web"  # noqa: S105  (the name sessions' tokens are listed under)
PATH = "/app"


class SignInFirst(Exception):
    """No valid session: the browser is sent to the sign-in page."""


class PasswordFirst(Exception):
    """The account must set its own password before anything else."""


@dataclass(frozen=True)
class Staff:
    """The signed-in person, in their language, with the token their forms carry."""

    principal: Principal
    lang: str
    token: str

    @property
    def role(self) -> str:
        return self.principal.role


def language(request: Request) -> str:
    """`?lang=` wins (and is remembered in a cookie), then the cookie, then the browser's."""
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return i18n.pick_language(chosen, request.headers.get("accept-language"))


def secure(request: Request) -> bool:
    return bool(request.app.state.settings.public_url.startswith("https://"))


def _secret(request: Request) -> str:
    return str(request.app.state.settings.secret_key.get_secret_value())


def session_ttl(request: Request) -> timedelta:
    return timedelta(hours=request.app.state.settings.session_hours)


async def staff(request: Request, *roles: str, password_page: bool = False) -> Staff:
    """The signed-in user, if they have one of `roles` (any role when none are given);
    else SignInFirst (no session) or Forbidden (another role)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise SignInFirst
    engine = request.app.state.service.engine
    try:
        principal = await run_in_threadpool(
            principal_for_token, engine, token, session_ttl(request)
        )
    except NotAuthenticated:
        raise SignInFirst from None
    if not password_page:
        assert principal.user_id is not None
        if await run_in_threadpool(_must_change, engine, principal.user_id):
            raise PasswordFirst
    if roles and principal.role not in roles:
        raise Forbidden(f"this page is for the {' or '.join(roles)} role")
    return Staff(principal, language(request), token)


def _must_change(engine: Any, user_id: int) -> bool:
    with engine.connect() as conn:
        return must_change_password(conn, user_id)


def render(
    request: Request,
    lang: str,
    template: str,
    who: Staff | None = None,
    status: int = 200,
    **values: Any,
) -> Response:
    """A staff page: the layout's navigation for the role, a CSRF token for its forms."""
    token = request.cookies.get(CSRF_COOKIE) or csrf.new_token(_secret(request))
    other = "en" if lang == "vi" else "vi"
    html = (
        environment(lang)
        .get_template(template)
        .render(
            who=who,
            csrf_token=token,
            other_lang=other,
            switch_url=_switch(request, other),
            development=request.app.state.settings.is_development,
            path=request.url.path,
            **values,
        )
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"  # a staff page is nobody else's
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE, token, path=PATH, httponly=True, samesite="strict", secure=secure(request)
        )
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=365 * 86400,
            path=PATH,
            samesite="lax",
            secure=secure(request),
        )
    return response


def _switch(request: Request, other: str) -> str:
    """This page in the other language: its own query kept, `lang` replaced."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("lang", "done")]
    return f"{request.url.path}?{urlencode([*kept, ('lang', other)])}"


def start_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(session_ttl(request).total_seconds()),
        path=PATH,
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PATH)


def go(url: str) -> RedirectResponse:
    """After a form: see-other, so a reload is a plain GET."""
    return RedirectResponse(url, status_code=303)


@dataclass
class Form:
    """A posted form: its text fields, its files, and whether its CSRF token is ours."""

    values: dict[str, str]
    lists: dict[str, list[str]]
    files: dict[str, Any]
    fresh: bool
    key: str

    def get(self, name: str) -> str:
        return self.values.get(name, "").strip()


MAX_FIELD_CHARS = 5000


async def read_form(request: Request) -> Form:
    """The posted fields (each cut to a bound), checked against the CSRF cookie."""
    raw = await request.form(max_files=1, max_fields=100, max_part_size=64 * 1024)
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    files: dict[str, Any] = {}
    for name, value in raw.multi_items():
        if isinstance(value, str):
            values.setdefault(name, value[:MAX_FIELD_CHARS])
            lists.setdefault(name, []).append(value[:MAX_FIELD_CHARS])
        else:
            files[name] = value
    fresh = csrf.valid(_secret(request), request.cookies.get(CSRF_COOKIE), values.get("csrf", ""))
    return Form(values, lists, files, fresh, values.get("idem", ""))


def new_key() -> str:
    """The idempotency key a form carries: one per form shown."""
    return secrets.token_urlsafe(16)


def once(request: Request, who: Staff, form: Form, run: Callable[[], str]) -> str:
    """Run a form's write once per its idempotency key; a second submit of the same form
    gets the first one's answer (where to go next) and writes nothing. Call off the loop."""
    key = form.key or new_key()
    idempotency.check_key(key)
    scope = f"{who.principal.user_id}:app:{request.url.path}:{key}"
    kept = {k: v for k, v in sorted(form.lists.items()) if k not in ("csrf", "idem")}
    digest = idempotency.request_hash(kept)
    answer = idempotency.once(
        request.app.state.service.engine, scope, digest, lambda: (303, {"location": run()})
    )
    return str(answer.body["location"])
