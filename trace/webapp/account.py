"""Signing in and out of the staff app, and changing one's own password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import Engine

from ledger.statement import utc_now
from ledger.store import writing
from ocop_trace import accounts, i18n
from ocop_trace.errors import InvalidInput, NotAuthenticated, TooManyRequests
from ocop_trace.webapp.forms import FORM
from ocop_trace.webapp.session import (
    SESSION_COOKIE,
    TOKEN_NAME,
    end_session,
    go,
    language,
    read_form,
    render,
    staff,
    start_session,
)

router = APIRouter(prefix="/app", include_in_schema=False)


@router.get("/login")
async def login_page(request: Request) -> Response:
    return render(request, language(request), "app/login.html", values={}, errors={})


@router.post("/login")
async def login(request: Request) -> Response:
    lang = language(request)
    form = await read_form(request)
    username, password = form.get("username")[:64], form.values.get("password", "")[:200]
    errors, status = {}, 422
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    if not username:
        errors["username"] = i18n.t(lang, "app.error.required")
    if not password:
        errors["password"] = i18n.t(lang, "app.error.required")
    if not errors:
        host = request.client.host if request.client else None
        try:
            signed = await request.app.state.sign_in(username, password, host, TOKEN_NAME)
        except NotAuthenticated:
            errors[FORM] = i18n.t(lang, "app.login.wrong")
        except TooManyRequests as exc:
            errors[FORM] = i18n.t(lang, "app.login.wait", seconds=exc.retry_after or 1)
            status = 429
        else:
            response = go("/app/")
            start_session(request, response, signed.token)
            return response
    values = {"username": username}
    return render(request, lang, "app/login.html", values=values, errors=errors, status=status)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await read_form(request)
    response = go("/app/login")
    token = request.cookies.get(SESSION_COOKIE, "")
    if form.fresh and token:
        engine = request.app.state.service.engine
        await run_in_threadpool(_revoke, engine, token)
    end_session(response)
    return response


def _revoke(engine: Engine, token: str) -> None:
    with writing(engine) as conn:
        accounts.revoke_token_value(conn, token, utc_now())


@router.get("/password")
async def password_page(request: Request) -> Response:
    who = await staff(request, password_page=True)
    return render(request, who.lang, "app/password.html", who, errors={})


@router.post("/password")
async def change_password(request: Request) -> Response:
    who = await staff(request, password_page=True)
    lang = who.lang
    form = await read_form(request)
    current, new, again = (form.values.get(n, "")[:200] for n in ("current", "new", "again"))
    errors = {}
    if not form.fresh:
        errors[FORM] = i18n.t(lang, "app.error.expired")
    if len(new) < accounts.MIN_PASSWORD:
        errors["new"] = i18n.t(lang, "app.password.short", min=accounts.MIN_PASSWORD)
    elif new != again:
        errors["again"] = i18n.t(lang, "app.password.differ")
    elif new == current:
        errors["new"] = i18n.t(lang, "app.password.same")
    if not errors:
        host = request.client.host if request.client else None
        try:  # the current password, checked (and throttled) as a sign-in is
            await request.app.state.sign_in(who.principal.username, current, host, TOKEN_NAME)
        except NotAuthenticated:
            errors["current"] = i18n.t(lang, "app.password.wrong")
        except TooManyRequests as exc:
            errors[FORM] = i18n.t(lang, "app.login.wait", seconds=exc.retry_after or 1)
    if not errors:
        try:
            token = await run_in_threadpool(
                request.app.state.service.change_password, who.principal, new, TOKEN_NAME
            )
        except InvalidInput:
            errors["new"] = i18n.t(lang, "app.password.short", min=accounts.MIN_PASSWORD)
        else:
            response = go("/app/?changed=1")
            start_session(request, response, token)
            return response
    return render(request, lang, "app/password.html", who, errors=errors, status=422)
