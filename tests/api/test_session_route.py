"""Issue 18, the session cookie's server side: ``/auth/session`` turns a one-time ticket into a signed,
HttpOnly, SameSite=Lax cookie with an expiry (Secure over https), a ticket works once and for a
minute, a tampered or revoked cookie names nobody, and the generated secret is kept with mode 600."""

from __future__ import annotations

import stat
from dataclasses import replace

import pytest
from starlette.applications import Starlette

from console.access import sessions as sessions_module
from console.access.auth import Identity, Role
from console.access.sessions import COOKIE_NAME, SECRET_FILE, Sessions
from console.api.session import session_routes
from console.runtime import Services
from console.storage import Store
from tests.api.conftest import TestClient

pytestmark = [pytest.mark.identity]

BOB = Identity("bob", Role.APPROVER, source="password")


@pytest.fixture
def parts(settings):
    settings = replace(settings, auth={"users": {"bob": {"password_hash": "x", "role": "approver"}}})
    store = Store(settings.db_path)
    services = Services(settings, store, None, None, sessions=Sessions(store, settings))
    yield services
    store.close()


def client(services: Services, base_url: str = "http://testserver") -> TestClient:
    app = Starlette(routes=session_routes(lambda: services))
    return TestClient(app, base_url=base_url, raise_server_exceptions=False)


def test_a_ticket_becomes_a_signed_http_only_cookie_once(parts):
    _, ticket = parts.sessions.start(BOB)
    with client(parts) as http:
        answer = http.post("/auth/session", json={"ticket": ticket})
        assert answer.status_code == 204, answer.text
        header = answer.headers["set-cookie"]
        assert header.startswith(f"{COOKIE_NAME}=")
        for part in ("HttpOnly", "SameSite=lax", "Path=/", "Max-Age=43200"):
            assert part in header, header
        assert "Secure" not in header and "bob" not in header
        again = http.post("/auth/session", json={"ticket": ticket})
        assert again.status_code == 401 and "sign in again" in again.json()["error"]
        assert http.post("/auth/session", json={}).status_code == 400
    cookie = header.split(";")[0].split("=", 1)[1]
    assert parts.sessions.resume(cookie).identity == BOB
    assert parts.sessions.resume(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None


def test_over_https_the_cookie_is_secure(parts):
    _, ticket = parts.sessions.start(BOB)
    with client(parts, "https://console.example") as http:
        answer = http.post("/auth/session", json={"ticket": ticket})
    assert answer.status_code == 204 and "Secure" in answer.headers["set-cookie"]


def test_a_ticket_expires_and_a_session_ends_on_the_server(parts, monkeypatch):
    moment = [2_000_000_000.0]
    monkeypatch.setattr(sessions_module, "now", lambda: moment[0])
    _, late = parts.sessions.start(BOB)
    moment[0] += 61
    assert parts.sessions.redeem(late) is None  # a minute is all a ticket gets
    _, ticket = parts.sessions.start(BOB)
    cookie = parts.sessions.redeem(ticket)
    assert parts.sessions.resume(cookie) is not None
    with client(parts) as http:
        http.cookies.set(COOKIE_NAME, cookie)
        ended = http.delete("/auth/session")
    assert ended.status_code == 204 and f'{COOKIE_NAME}=""' in ended.headers["set-cookie"]
    assert parts.sessions.resume(cookie) is None  # revoked: a copy of the cookie is dead too
    moment[0] += 12 * 3600 + 1
    _, ticket = parts.sessions.start(BOB)
    fresh = parts.sessions.redeem(ticket)
    moment[0] += 12 * 3600 + 1
    assert parts.sessions.resume(fresh) is None  # expired with the session


def test_a_role_change_or_a_removed_user_ends_the_session(parts):
    _, ticket = parts.sessions.start(BOB)
    cookie = parts.sessions.redeem(ticket)
    demoted = replace(parts.settings, auth={"users": {"bob": {"password_hash": "x", "role": "viewer"}}})
    assert Sessions(parts.store, demoted).resume(cookie) is None
    assert Sessions(parts.store, replace(parts.settings, auth={})).resume(cookie) is None


def test_the_generated_secret_is_kept_private(parts):
    path = parts.settings.data_dir / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Sessions(parts.store, parts.settings).resume(None) is None
