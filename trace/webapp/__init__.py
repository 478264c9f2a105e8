"""The staff web app under /app/: producers, the council and inspectors, in the browser.

Server-rendered pages (templates/app/) over the same use cases as the API (service.py);
one module per concern: session (sign-in, CSRF, idempotent forms), forms (input and its
messages), account, producer, council, imports (the spreadsheet upload), inspector,
charts. `install` wires it in.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from ocop_trace.api.deps import writes_take_turns
from ocop_trace.webapp import account, council, home, imports, inspector, producer
from ocop_trace.webapp.session import PasswordFirst, SignInFirst, end_session, go
from ocop_trace.webapp.verification import Verifications


def install(app: FastAPI) -> None:
    app.state.verifications = Verifications(app.state.service.store)
    for module in (home, account, producer, council, imports, inspector):
        app.include_router(module.router, dependencies=[Depends(writes_take_turns)])

    async def sign_in_first(request: Request, exc: Exception) -> Response:
        response = go("/app/login")
        end_session(response)
        return response

    async def password_first(request: Request, exc: Exception) -> Response:
        return go("/app/password")

    app.add_exception_handler(SignInFirst, sign_in_first)
    app.add_exception_handler(PasswordFirst, password_first)
