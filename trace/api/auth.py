"""Signing in (tokens for scripts and people), and the council's user management."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from ledger.statement import utc_now
from ledger.store import writing
from ocop_trace import accounts
from ocop_trace.api.deps import IdPath, PrincipalDep, ServiceDep
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


@router.post(
    "/auth/token",
    status_code=201,
    summary="Exchange username and password for an API token (shown once)",
)
def login(data: Login, service: ServiceDep) -> dict[str, Any]:
    with writing(service.engine) as conn:
        principal = accounts.authenticate(conn, data.username, data.password)
        assert principal.user_id is not None
        token_id, token = accounts.issue_token(conn, principal.user_id, data.token_name, utc_now())
    return {
        "token": token,
        "token_id": token_id,
        "token_type": "bearer",
        "role": principal.role,
        "producer_id": principal.producer_id,
        "note": "store this token now: it is not shown again",
    }


@router.get("/auth/me", summary="Who the token belongs to")
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


@router.post("/users", status_code=201, summary="Create a user (council)")
def create_user(
    data: Annotated[NewUser, Body()], service: ServiceDep, principal: PrincipalDep
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
