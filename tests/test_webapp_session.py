"""The staff app's sign-in: the session cookie, CSRF on every form, throttling, signing out,
changing a password, and a new account setting its own password at first sign-in."""

from __future__ import annotations

import pytest
from support import PASSWORD, Api
from webapp_support import browser, field_error, post_form, sign_in, tokens

from ocop_trace.throttle import FREE_FAILURES
from ocop_trace.webapp.session import CSRF_COOKIE, SESSION_COOKIE

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_a_page_without_a_session_sends_the_browser_to_sign_in(api: Api) -> None:
    client = browser(api)
    for path in ("/app/", "/app/batches/new", "/app/ratings/new", "/app/reports"):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/app/login"


def test_signing_in_sets_an_httponly_lax_session_cookie_that_expires(api: Api) -> None:
    client = browser(api)
    page = client.get("/app/login")
    assert page.status_code == 200
    assert 'name="username"' in page.text
    assert 'name="password"' in page.text
    assert page.headers["cache-control"] == "no-store"
    answer = client.post(
        "/app/login", data={**tokens(page.text), "username": "producer", "password": PASSWORD}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/app/"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/app" in flags
    assert f"max-age={12 * 3600}" in flags
    assert "secure" not in flags  # the test server's public URL is http
    home = client.get("/app/")
    assert home.status_code == 200
    assert "<h1>" in home.text


def test_the_cookie_is_secure_when_the_public_url_is_https(api: Api) -> None:
    api.client.app.state.settings.public_url = "https://truyxuat.example.vn"  # type: ignore[attr-defined]
    client = browser(api)
    client.base_url = client.base_url.copy_with(scheme="https")  # behind https, as served
    page = client.get("/app/login")
    answer = client.post(
        "/app/login", data={**tokens(page.text), "username": "producer", "password": PASSWORD}
    )
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


@sqlite_only
def test_a_wrong_password_is_said_in_the_users_language_and_keeps_the_username(api: Api) -> None:
    client = browser(api)
    answer = post_form(
        client, "/app/login", "/app/login", {"username": "producer", "password": "nope"}
    )
    assert answer.status_code == 422
    assert "Sai tên đăng nhập hoặc mật khẩu." in answer.text
    assert 'value="producer"' in answer.text
    english = post_form(
        client, "/app/login?lang=en", "/app/login", {"username": "producer", "password": "x"}
    )
    assert "Wrong username or password." in english.text
    empty = post_form(client, "/app/login", "/app/login", {"username": "", "password": ""})
    assert field_error(empty.text, "username") == "Please fill this in."


@sqlite_only
def test_a_form_without_its_csrf_token_is_refused(api: Api) -> None:
    client = browser(api)
    client.get("/app/login")
    answer = client.post(
        "/app/login", data={"csrf": "forged.token", "username": "producer", "password": PASSWORD}
    )
    assert answer.status_code == 422
    assert "Biểu mẫu đã hết hạn" in answer.text
    assert SESSION_COOKIE not in answer.cookies
    # Signed in, a write without the token writes nothing either.
    producer = sign_in(api, "producer")
    before = api.service.store.size()
    sent = producer.post(
        "/app/batches/new",
        data={"product_id": "x", "lot": "L1", "produced_on": "01/01/2026", "quantity": "1"},
    )
    assert sent.status_code == 422
    assert api.service.store.size() == before


@sqlite_only
def test_sign_in_is_throttled_as_the_api_token_route_is(api: Api) -> None:
    client = browser(api)
    for _ in range(FREE_FAILURES["account"] + 1):
        post_form(client, "/app/login", "/app/login", {"username": "producer", "password": "x"})
    blocked = post_form(
        client, "/app/login", "/app/login", {"username": "producer", "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert "thử lại sau" in blocked.text
    # The API's token route shares the count: the account is blocked there too.
    api_answer = api.client.post(
        "/api/v1/auth/token", json={"username": "producer", "password": PASSWORD}
    )
    assert api_answer.status_code == 429


@sqlite_only
def test_signing_out_revokes_the_session(api: Api) -> None:
    client = sign_in(api, "producer")
    token = client.cookies.get(SESSION_COOKIE)
    page = client.get("/app/")
    answer = client.post("/app/logout", data=tokens(page.text))
    assert answer.status_code == 303
    assert answer.headers["location"] == "/app/login"
    # The old cookie, sent again, no longer opens anything.
    again = browser(api)
    again.cookies.set(SESSION_COOKIE, str(token), path="/app")
    assert again.get("/app/").status_code == 303


@sqlite_only
def test_a_new_account_sets_its_own_password_before_anything_else(api: Api) -> None:
    council = sign_in(api, "council")
    made = post_form(
        council,
        "/app/users",
        "/app/users",
        {"username": "clerk.thai", "role": "producer", "producer_id": "htx-tai-hoan"},
        "user",
    )
    assert made.status_code == 200, made.text
    code = made.text.split("data-one-time-code>")[1].split("<")[0]
    assert len(code) >= 12
    assert code not in council.get("/app/users").text  # shown once
    clerk = sign_in(api, "clerk.thai", code)
    assert clerk.get("/app/").headers["location"] == "/app/password"
    assert clerk.get("/app/batches/new").headers["location"] == "/app/password"
    fields = {"current": code, "new": "short", "again": "short"}
    short = post_form(clerk, "/app/password", "/app/password", fields)
    assert short.status_code == 422
    assert field_error(short.text, "new") == "Mật khẩu cần ít nhất 12 ký tự."
    fields = {"current": code, "new": "một mật khẩu dài", "again": "mot mat khau dai"}
    differ = post_form(clerk, "/app/password", "/app/password", fields)
    assert field_error(differ.text, "again") == "Hai lần nhập mật khẩu mới không khớp nhau."
    fields = {
        "current": "wrong-wrong-wrong",
        "new": "một mật khẩu dài",
        "again": "một mật khẩu dài",
    }
    wrong = post_form(clerk, "/app/password", "/app/password", fields)
    assert field_error(wrong.text, "current") == "Mật khẩu hiện tại chưa đúng."
    fields = {"current": code, "new": "một mật khẩu dài", "again": "một mật khẩu dài"}
    done = post_form(clerk, "/app/password", "/app/password", fields)
    assert done.status_code == 303
    assert clerk.get("/app/").status_code == 200  # the new session works at once
    # The one-time code no longer signs in; the new password does.
    stale = post_form(
        browser(api), "/app/login", "/app/login", {"username": "clerk.thai", "password": code}
    )
    assert stale.status_code == 422
    sign_in(api, "clerk.thai", "một mật khẩu dài")


@sqlite_only
def test_the_csrf_cookie_is_strict_and_httponly(api: Api) -> None:
    page = browser(api).get("/app/login")
    cookie = next(c for c in page.headers.get_list("set-cookie") if c.startswith(CSRF_COOKIE))
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags


@sqlite_only
def test_the_language_switch_is_remembered(api: Api) -> None:
    client = sign_in(api, "producer")
    assert 'lang="vi"' in client.get("/app/").text
    assert 'lang="en"' in client.get("/app/?lang=en").text
    assert 'lang="en"' in client.get("/app/batches/new").text
