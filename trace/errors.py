"""Domain errors, and the one place where they (and every other failure) become HTTP.

    ServiceError                 status  code
    ├── BadLink                  400     bad_link           a link or printed code unreadable
    ├── InvalidInput             422     invalid_input      input breaks a rule; `field` names it
    ├── NotAuthenticated         401     not_authenticated  no or bad credentials
    ├── Forbidden                403     forbidden          role or ownership does not allow it
    ├── NotFound                 404     not_found
    │   └── Voided               404     not_found          a serial of a voided label set
    ├── Conflict                 409     conflict           duplicate, or state does not allow it
    ├── PreconditionFailed       412     precondition_failed
    ├── PayloadTooLarge          413     too_large          a body or file over its limit
    ├── TooManyRequests          429     rate_limited       `retry_after` seconds, when known
    └── Unavailable              503     unavailable        database or ledger not usable

Every error answer has the shape {"error": {"code", "message", "field"?, "details"?}}.
Ledger errors from `ledger/` are translated here too, so routes never catch them. A
browser (not the JSON API) gets the same error as a page, through the renderer the app
passes to `install_error_handlers`. Importing this module imports no web framework: the
command line uses the same errors.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ledger.errors import AuthorityError, EncodingError, LedgerError, ProofError, SignatureError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import Response

log = logging.getLogger("ocop_trace")


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details
        self.retry_after = retry_after
        # Set when a statement is refused: the entry index it would have had, and its
        # place among the statements sent (see LedgerStore.append_stream).
        self.entry_index: int | None = None
        self.position: int | None = None


class BadLink(ServiceError):
    status, code = 400, "bad_link"


class InvalidInput(ServiceError):
    status, code = 422, "invalid_input"


class NotAuthenticated(ServiceError):
    status, code = 401, "not_authenticated"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Voided(NotFound):
    """A label's serial from a set its producer voided: not registered (404), with the
    void's entry, reason and time in `details` so a page can say why."""

    def __init__(self, message: str, *, set_index: int, index: int, reason: str, at: str) -> None:
        voided = {"label_set": set_index, "index": index, "reason": reason, "at": at}
        super().__init__(message, details={"verdict": "not_registered", "voided": voided})
        self.reason, self.at = reason, at


class Conflict(ServiceError):
    status, code = 409, "conflict"


class PreconditionFailed(ServiceError):
    status, code = 412, "precondition_failed"


class PayloadTooLarge(ServiceError):
    status, code = 413, "too_large"


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
        (401, "Not signed in, or the token is unknown, expired or revoked"),
        (403, "Your role or ownership does not allow this"),
        (404, "Nothing with that id"),
        (409, "Conflicts with what exists (duplicate id, reused Idempotency-Key...)"),
        (413, "The body is larger than this route accepts"),
        (422, "The request breaks a rule; `field` names the part to fix"),
        (429, "Too many attempts; `Retry-After` says when to try again"),
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


def from_ledger_error(exc: LedgerError) -> ServiceError:
    """What a ledger refusal means to the person who sent the statement."""
    details = {
        k: str(v) for k, v in (("expected", exc.expected), ("found", exc.found)) if v is not None
    }
    error: ServiceError
    if isinstance(exc, SignatureError):
        error = InvalidInput(
            f"signature does not verify: {exc.message}", field="sig", details=details
        )
    elif isinstance(exc, AuthorityError):
        error = Forbidden(f"the signing key may not do this: {exc.message}", details=details)
    elif isinstance(exc, EncodingError | ProofError):
        error = InvalidInput(exc.message, details=details)
    else:
        error = Conflict(exc.message, details=details)
    error.position = getattr(exc, "position", None)
    return error


def as_service_error(exc: Exception) -> ServiceError | None:
    """The domain meaning of an exception, if it has one (ledger errors translated)."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, LedgerError):
        return from_ledger_error(exc)
    return None


def problem(error: Mapping[str, Any], skip: int = 0) -> tuple[str | None, str]:
    """(field, message) of one Pydantic validation error, the first `skip` parts of its
    location left out. A rule checked across fields (a model validator) is reported
    against the field its ServiceError names, not against the whole body."""
    loc = [str(part) for part in error["loc"][skip:]]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ServiceError) and cause.field and loc[-1:] != [cause.field]:
        loc.append(cause.field)
    return ".".join(loc) or None, str(error["msg"]).removeprefix("Value error, ")


def _field(error: ServiceError) -> str | None:
    # A statement refused in a list is named by its place in the list sent.
    if error.position is None:
        return error.field
    where = f"statements[{error.position}]"
    return f"{where}.{error.field}" if error.field else where


def asgi_answer(error: ServiceError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The error as (status, headers, body) for an ASGI middleware that answers before
    the app runs (a body over its limit): the same shape as every other error."""
    import json

    body = json.dumps(
        error_body(error.code, error.message, error.field, error.details), ensure_ascii=False
    ).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if error.retry_after is not None:
        headers.append((b"retry-after", str(error.retry_after).encode()))
    # The body was not read: the client must not send more on this connection.
    headers.append((b"connection", b"close"))
    return error.status, headers, body


# A page for a browser: (request, status, error) -> response, or None to answer JSON.
HtmlErrors = Callable[["Request", int, ServiceError], Awaitable["Response | None"]]


def install_error_handlers(app: FastAPI, html: HtmlErrors | None = None) -> None:
    """Map every failure to the one error shape (or to a page, for a browser)."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import OperationalError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def respond(request: Request, error: ServiceError) -> Response:
        if html is not None:
            page = await html(request, error.status, error)
            if page is not None:
                return page
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, NotAuthenticated) else {}
        if error.retry_after is not None:
            headers["Retry-After"] = str(error.retry_after)
        body = error_body(error.code, error.message, _field(error), error.details)
        return JSONResponse(body, status_code=error.status, headers=headers or None)

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> Response:
        return await respond(request, exc)

    @app.exception_handler(LedgerError)
    async def _ledger(request: Request, exc: LedgerError) -> Response:
        return await respond(request, from_ledger_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for e in exc.errors():
            field, message = problem(e, skip=1)
            problems.append({"field": field or str(e["loc"][0]), "message": message})
        field = problems[0]["field"] if problems else None
        detail = problems[0]["message"] if problems else "invalid request"
        message = f"{field}: {detail}" if field else detail
        return await respond(
            request, InvalidInput(message, field=field, details={"problems": problems})
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        error: ServiceError
        if exc.status_code == 404:
            error = NotFound(f"nothing at {request.url.path}; the API is described at /docs")
        elif exc.status_code == 405:
            error = ServiceError(f"{request.method} is not allowed on {request.url.path}")
            error.status, error.code = 405, "method_not_allowed"
        else:
            error = ServiceError(str(exc.detail))
            error.status, error.code = exc.status_code, "http_error"
        response = await respond(request, error)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> Response:
        log.error("database unavailable: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
        return await respond(request, Unavailable("the database is not reachable; try again"))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        # Logged for operators with the traceback; the client sees no internals.
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            error_body("internal", "something went wrong on our side"), status_code=500
        )
