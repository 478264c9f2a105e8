"""Accounts and keys: disabling users, listing and revoking tokens, expiry, key rotation and
revocation, and re-encrypting every custodial key under a new secret (API and CLI)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update
from support import BATCH, PASSWORD, PRODUCT, Api, login
from test_api import assert_error
from typer.testing import CliRunner

from ledger.store import KEY
from ocop_trace.accounts import TOKEN
from ocop_trace.app import create_app
from ocop_trace.cli import app as cli
from ocop_trace.custody import CUSTODIAL
from ocop_trace.rebuild import check_projection

runner = CliRunner()


def me(api: Api, token: str) -> int:
    return api.client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
    ).status_code


def test_a_disabled_user_cannot_sign_in_and_its_tokens_stop_working(api: Api) -> None:
    token = api.tokens["producer"]
    assert api.post("/api/v1/users/producer/disable", None, "producer").status_code == 403
    answer = api.post("/api/v1/users/producer/disable", None, "council")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"username": "producer", "disabled": True}
    assert me(api, token) == 401
    bad = api.client.post("/api/v1/auth/token", json={"username": "producer", "password": PASSWORD})
    assert_error(bad, 401, "not_authenticated")
    assert api.post("/api/v1/users/producer/enable", None, "council").status_code == 200
    assert me(api, token) == 401, "enabling a user does not bring its revoked tokens back"
    assert me(api, login(api.client, "producer")) == 200
    assert_error(api.post("/api/v1/users/nobody/disable", None, "council"), 404, "not_found")


def test_tokens_are_listed_and_revoked_by_their_user_or_the_council(api: Api) -> None:
    second = login(api.client, "producer")
    mine = api.client.get("/api/v1/auth/tokens", headers=api.as_("producer")).json()["items"]
    assert len(mine) == 2
    assert all(t["expires_at"] and t["revoked_at"] is None for t in mine)
    assert "token_hash" not in mine[0]
    council_view = api.client.get("/api/v1/users/producer/tokens", headers=api.as_("council"))
    assert council_view.json()["items"] == mine
    assert_error(
        api.client.get("/api/v1/users/council/tokens", headers=api.as_("producer")),
        403,
        "forbidden",
    )
    revoked = api.client.delete("/api/v1/users/producer/tokens", headers=api.as_("council"))
    assert revoked.json() == {"revoked": 2}
    assert me(api, second) == 401
    assert me(api, api.tokens["producer"]) == 401


def _age_tokens(api: Api, days: int) -> None:
    old = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with api.service.engine.begin() as conn:
        conn.execute(update(TOKEN).values(created_at=old, last_used_at=old))


def test_a_token_unused_for_30_days_expires(api: Api) -> None:
    _age_tokens(api, 31)
    error = assert_error(
        api.client.get("/api/v1/auth/me", headers=api.as_("producer")), 401, "not_authenticated"
    )
    assert "expired" in error["message"]


def test_using_a_token_moves_its_expiry_on(api: Api) -> None:
    _age_tokens(api, 29)
    assert me(api, api.tokens["producer"]) == 200
    _age_tokens_of_others = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
    mine = api.client.get("/api/v1/auth/tokens", headers=api.as_("producer")).json()["items"]
    assert mine[0]["last_used_at"][:10] > _age_tokens_of_others  # written just now
    assert mine[0]["expires_at"][:10] >= (datetime.now(UTC) + timedelta(days=29)).strftime(
        "%Y-%m-%d"
    )


def test_rotating_a_producers_key_registers_one_and_revokes_the_other_in_one_append(
    api: Api,
) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    size = api.service.store.size()
    assert (
        api.post(
            "/api/v1/producers/htx-tai-hoan/keys/rotate", {"reason": "x"}, "council"
        ).status_code
        == 422
    )
    assert_error(
        api.post("/api/v1/producers/htx-tai-hoan/keys/rotate", {"reason": "lost"}, "producer"),
        403,
        "forbidden",
    )
    answer = api.post(
        "/api/v1/producers/htx-tai-hoan/keys/rotate", {"reason": "laptop lost"}, "council"
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    indices = [r["index"] for r in body["receipts"]]
    assert indices == [size, size + 1]
    with api.service.engine.connect() as conn:
        grants = {
            row.key_id: row.revoked_index
            for row in conn.execute(select(KEY.c.key_id, KEY.c.revoked_index))
        }
        held = (
            conn.execute(
                select(CUSTODIAL.c.key_id).where(CUSTODIAL.c.owner == "producer:htx-tai-hoan")
            )
            .scalars()
            .all()
        )
    assert grants[body["key_id"]] is None
    assert grants[body["revoked_key_id"]] == size + 1
    assert held == [body["key_id"]], "the revoked key's private half must be gone"
    # The producer signs with its new key.
    batch = api.post("/api/v1/batches", BATCH, "producer")
    assert batch.status_code == 201, batch.text
    entry = api.client.get(f"/api/v1/entries/{batch.json()['receipt']['index']}").json()
    assert entry["entry"]["statement"]["key_id"] == body["key_id"]
    assert check_projection(api.service.store) is None


def test_a_revoked_key_signs_nothing_and_says_what_to_do(api: Api) -> None:
    api.post("/api/v1/products", PRODUCT, "council")
    with api.service.engine.connect() as conn:
        key_id = conn.execute(
            select(CUSTODIAL.c.key_id).where(CUSTODIAL.c.owner == "producer:htx-tai-hoan")
        ).scalar_one()
    answer = api.post(f"/api/v1/keys/{key_id}/revoke", {"reason": "leaked"}, "council")
    assert answer.status_code == 201, answer.text
    error = assert_error(api.post("/api/v1/batches", BATCH, "producer"), 409, "conflict")
    assert "rotate" in error["message"]
    assert_error(
        api.post(f"/api/v1/keys/{key_id}/revoke", {"reason": "again"}, "council"), 403, "forbidden"
    )
    # The council gives it a new key; it signs again.
    rotated = api.post(
        "/api/v1/producers/htx-tai-hoan/keys/rotate", {"reason": "new key"}, "council"
    )
    assert rotated.status_code == 201, rotated.text
    assert len(rotated.json()["receipts"]) == 1
    assert api.post("/api/v1/batches", BATCH, "producer").status_code == 201


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cli_manages_users_tokens_and_keys(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_DATABASE_URL", api.settings.database_url)
    monkeypatch.setenv("TRACE_KEY_DIR", str(api.settings.key_dir))
    listed = runner.invoke(cli, ["user-tokens", "producer"])
    assert listed.exit_code == 0, listed.output
    assert "expires" in listed.output
    assert runner.invoke(cli, ["user-revoke-tokens", "producer"]).exit_code == 0
    assert me(api, api.tokens["producer"]) == 401
    assert runner.invoke(cli, ["user-disable", "inspector"]).exit_code == 0
    assert me(api, api.tokens["inspector"]) == 401
    assert runner.invoke(cli, ["user-enable", "inspector"]).exit_code == 0
    missing = runner.invoke(cli, ["user-disable", "nobody"])
    assert missing.exit_code == 2
    assert "no user" in missing.output
    rotated = runner.invoke(cli, ["key-rotate", "--producer", "htx-tai-hoan"])
    assert rotated.exit_code == 0, rotated.output
    new_key = rotated.output.split("new key ")[1].split()[0]
    revoked = runner.invoke(cli, ["key-revoke", new_key, "--reason", "test revoke"])
    assert revoked.exit_code == 0, revoked.output
    again = runner.invoke(cli, ["key-revoke", new_key, "--reason", "test revoke"])
    assert again.exit_code == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_rotate_secret_reencrypts_every_custodial_key_at_once(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRACE_DATABASE_URL", api.settings.database_url)
    monkeypatch.setenv("TRACE_KEY_DIR", str(api.settings.key_dir))
    with api.service.engine.connect() as conn:
        before = dict(conn.execute(select(CUSTODIAL.c.key_id, CUSTODIAL.c.encrypted_pem)).all())
    assert len(before) == 3  # the council, the producer, the inspector
    short = runner.invoke(cli, ["rotate-secret"], env={"TRACE_NEW_SECRET_KEY": "short"})
    assert short.exit_code == 2
    new_secret = "n" * 40
    done = runner.invoke(cli, ["rotate-secret"], env={"TRACE_NEW_SECRET_KEY": new_secret})
    assert done.exit_code == 0, done.output
    assert new_secret not in done.output
    with api.service.engine.connect() as conn:
        after = dict(conn.execute(select(CUSTODIAL.c.key_id, CUSTODIAL.c.encrypted_pem)).all())
    assert after.keys() == before.keys()
    assert all(after[k] != before[k] for k in before)
    # The old secret no longer opens the keys, and says which setting to fix.
    stale = create_app(api.settings)
    from fastapi.testclient import TestClient

    old = TestClient(stale)
    council = {"Authorization": f"Bearer {api.tokens['council']}"}
    error = assert_error(
        old.post("/api/v1/products", json=PRODUCT, headers=council), 503, "unavailable"
    )
    assert "rotate-secret" in error["message"]
    # The new secret does.
    renewed = api.settings.model_copy(update={"secret_key": SecretStr(new_secret)})
    fresh = TestClient(create_app(renewed))
    assert fresh.post("/api/v1/products", json=PRODUCT, headers=council).status_code == 201
    # A second rotation from the wrong secret changes nothing.
    wrong = runner.invoke(cli, ["rotate-secret"], env={"TRACE_NEW_SECRET_KEY": "m" * 40})
    assert wrong.exit_code == 2
    with api.service.engine.connect() as conn:
        unchanged = dict(conn.execute(select(CUSTODIAL.c.key_id, CUSTODIAL.c.encrypted_pem)).all())
        assert conn.execute(select(func.count()).select_from(CUSTODIAL)).scalar_one() == 3
    assert unchanged == after
    assert os.environ.get("TRACE_NEW_SECRET_KEY") is None


def test_a_refused_inspector_leaves_no_key_or_registration_behind(api: Api) -> None:
    size = api.service.store.size()
    again = {"username": "inspector", "password": PASSWORD, "role": "inspector"}
    assert_error(api.post("/api/v1/users", again, "council"), 409, "conflict")
    assert api.service.store.size() == size, "the refused inspector's key was registered"
    with api.service.engine.connect() as conn:
        held = conn.execute(
            select(func.count())
            .select_from(CUSTODIAL)
            .where(CUSTODIAL.c.owner == "inspector:inspector")
        ).scalar_one()
    assert held == 1
    # The inspector it did create signs with the key registered with it.
    inspection = api.post(
        "/api/v1/inspections", {"batch_id": "mien-2026-001", "result": "pass"}, "inspector"
    )
    assert inspection.status_code == 404  # no such batch: signed and refused by the projection
