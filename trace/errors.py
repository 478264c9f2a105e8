"""Domain errors, and the one place where they (and every other failure) become HTTP.

    ServiceError                 status  code
    ├── InvalidInput             422     invalid_input      input breaks a rule; `field` names it
    ├── NotAuthenticated         401     not_authenticated  no or bad credentials
    ├── Forbidden                403     forbidden          role or ownership does not allow it
    ├── NotFound                 404     not_found
    ├── Conflict                 409     conflict           duplicate, or state does not allow it
    ├── PreconditionFailed       412     precondition_failed
    ├── TooManyRequests          429     rate_limited
    └── Unavailable              503     unavailable        database or ledger not usable

Every error answer has the shape {"error": {"code", "message", "field"?, "details"?}}.
Ledger errors from `ledger/` are translated here too, so routes never catch them.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import AuthorityError, EncodingError, LedgerError, SignatureError

log = logging.getLogger("ocop_trace")


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class InvalidInput(ServiceError):
    status, code = 422, "invalid_input"


class NotAuthenticated(ServiceError):
    status, code = 401, "not_authenticated"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class PreconditionFailed(ServiceError):
    status, code = 412, "precondition_failed"


class TooManyRequests(ServiceError):
    status, code = 429, "rate_limited"


class Unavailable(ServiceError):
    status, code = 503, "unavailable"


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """The one shape of every error answer."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (401, "Not signed in, or the token is unknown or revoked"),
        (403, "Your role or ownership does not allow this"),
        (404, "Nothing with that id"),
        (409, "Conflicts with what exists (duplicate id, reused Idempotency-Key...)"),
        (422, "The request breaks a rule; `field` names the part to fix"),
        (503, "The database is not reachable"),
    )
}


def error_body(
    code: str, message: str, field: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    if details:
        error["details"] = details
    return {"error": error}


def _respond(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def from_ledger_error(exc: LedgerError) -> ServiceError:
    """What a ledger refusal means to the person who sent the statement."""
    details = {
        k: str(v) for k, v in (("expected", exc.expected), ("found", exc.found)) if v is not None
    }
    if isinstance(exc, SignatureError):
        return InvalidInput(
            f"signature does not verify: {exc.message}", field="sig", details=details
        )
    if isinstance(exc, AuthorityError):
        return Forbidden(f"the signing key may not do this: {exc.message}", details=details)
    if isinstance(exc, EncodingError):
        return InvalidInput(exc.message, details=details)
    return Conflict(exc.message, details=details)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotAuthenticated) else None
        return _respond(
            exc.status, error_body(exc.code, exc.message, exc.field, exc.details), headers
        )

    @app.exception_handler(LedgerError)
    async def _ledger(request: Request, exc: LedgerError) -> JSONResponse:
        return await _service(request, from_ledger_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]),
                "message": str(e["msg"]).removeprefix("Value error, "),
            }
            for e in exc.errors()
        ]
        field = problems[0]["field"] if problems else None
        detail = problems[0]["message"] if problems else "invalid request"
        message = f"{field}: {detail}" if field else detail
        return _respond(422, error_body("invalid_input", message, field, {"problems": problems}))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}; the API is described at /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        return _respond(
            exc.status_code, error_body(code, message), dict(exc.headers) if exc.headers else None
        )

    @app.exception_handler(OperationalError)
    async def _database(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
        return _respond(503, error_body("unavailable", "the database is not reachable; try again"))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Logged for operators with the traceback; the client sees no internals.
        log.exception("unhandled error", exc_info=exc)
        return _respond(500, error_body("internal", "something went wrong on our side"))
