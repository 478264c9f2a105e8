"""Signing in (tokens for scripts and people), and the council's user management."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from ledger.statement import utc_now
from ledger.store import writing
from ocop_trace import accounts
from ocop_trace.api import examples
from ocop_trace.api.deps import IdPath, PrincipalDep, ServiceDep
from ocop_trace.api.examples import body
from ocop_trace.service import require_role

router = APIRouter(prefix="/api/v1", tags=["auth"])


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)
    token_name: str = Field(default="api", max_length=100)


class NewUser(BaseModel):
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=12, max_length=200)
    role: str = Field(description="council, producer or inspector")
    producer_id: str = Field(default="", max_length=64)


class SignedInOut(BaseModel):
    token: str = Field(description="Send it as 'Authorization: Bearer <token>'; shown once")
    token_id: int
    token_type: str
    role: str
    producer_id: str
    note: str


class Me(BaseModel):
    username: str
    role: str
    producer_id: str


class UserOut(Me):
    id: int


class TokenList(BaseModel):
    items: list[accounts.TokenPublic]


class Revoked(BaseModel):
    revoked: int = Field(description="How many live tokens were revoked")


class UserState(BaseModel):
    username: str
    disabled: bool


@router.post(
    "/auth/token",
    status_code=201,
    summary="Exchange username and password for an API token (shown once)",
    description="Failed sign-ins are counted per account and per network: past a few, "
    "each failure doubles a wait (429 with Retry-After). A token expires after "
    "TRACE_TOKEN_DAYS (30) days unused.",
    response_model=SignedInOut,
)
async def login(data: Annotated[Login, body(examples.LOGIN)], request: Request) -> dict[str, Any]:
    host = request.client.host if request.client else None
    signed = await request.app.state.sign_in(data.username, data.password, host, data.token_name)
    return {
        "token": signed.token,
        "token_id": signed.token_id,
        "token_type": "bearer",
        "role": signed.principal.role,
        "producer_id": signed.principal.producer_id,
        "note": "store this token now: it is not shown again",
    }


@router.get("/auth/me", summary="Who the token belongs to", response_model=Me)
def me(principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, *accounts.ROLES)
    return {
        "username": principal.username,
        "role": principal.role,
        "producer_id": principal.producer_id,
    }


@router.delete("/auth/tokens/{token_id}", status_code=204, summary="Revoke a token")
def revoke(token_id: IdPath, service: ServiceDep, principal: PrincipalDep) -> None:
    require_role(principal, *accounts.ROLES)
    with writing(service.engine) as conn:
        accounts.revoke_token(conn, principal, token_id, utc_now())


@router.post("/users", status_code=201, summary="Create a user (council)", response_model=UserOut)
def create_user(
    data: Annotated[NewUser, body(examples.NEW_USER)], service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    user_id = service.create_user(
        principal, data.username, data.password, data.role, data.producer_id
    )
    return {
        "id": user_id,
        "username": data.username,
        "role": data.role,
        "producer_id": data.producer_id,
    }


UsernamePath = Annotated[str, Path(pattern=accounts.USERNAME.pattern, max_length=64)]


def _ttl(request: Request) -> timedelta:
    return timedelta(days=request.app.state.settings.token_days)


@router.get("/auth/tokens", summary="Your tokens, with when each expires", response_model=TokenList)
def my_tokens(request: Request, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    tokens = service.user_tokens(principal, principal.username, _ttl(request))
    return {"items": [t.model_dump() for t in tokens]}


@router.get(
    "/users/{username}/tokens",
    summary="A user's tokens (council, or the user)",
    response_model=TokenList,
)
def user_tokens(
    username: UsernamePath, request: Request, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    tokens = service.user_tokens(principal, username, _ttl(request))
    return {"items": [t.model_dump() for t in tokens]}


@router.delete(
    "/users/{username}/tokens",
    summary="Revoke every token of a user (council, or the user)",
    response_model=Revoked,
)
def revoke_user_tokens(
    username: UsernamePath, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    return {"revoked": service.revoke_user_tokens(principal, username)}


def _switch(action: str, disabled: bool, summary: str) -> None:
    """POST /users/{username}/disable or /enable: the council turns a user off or on."""

    @router.post(f"/users/{{username}}/{action}", summary=summary, response_model=UserState)
    def switch(
        username: UsernamePath, service: ServiceDep, principal: PrincipalDep
    ) -> dict[str, Any]:
        service.set_user_disabled(principal, username, disabled)
        return {"username": username, "disabled": disabled}


_switch("disable", True, "Disable a user: it cannot sign in, its tokens are revoked (council)")
_switch("enable", False, "Enable a disabled user again; it signs in anew (council)")
