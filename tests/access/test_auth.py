from __future__ import annotations

import pytest

from console.access.auth import (
    Identity,
    InvalidIdentity,
    PermissionDenied,
    Role,
    check_password,
    demo_identity,
    hash_password,
    identity_from_oidc,
    require_approver,
    verify_password,
)
from console.access.signin import sign_in
from console.settings import Settings

FAST = 1_000  # iterations for tests; production uses PBKDF2_ITERATIONS


def _settings_with_users(**users: tuple[str, str]) -> Settings:
    return Settings(
        auth={
            "users": {
                name: {"password_hash": hash_password(pw, iterations=FAST), "role": role}
                for name, (pw, role) in users.items()
            }
        }
    )


def test_password_hash_round_trip_and_salted() -> None:
    first = hash_password("S3cret-pass", iterations=FAST)
    second = hash_password("S3cret-pass", iterations=FAST)
    assert first != second  # salted
    assert check_password("S3cret-pass", first)
    assert not check_password("s3cret-pass", first)
    assert "S3cret-pass" not in first


@pytest.mark.parametrize(
    "encoded", ["", "plain", "md5$1$a$b", "pbkdf2_sha256$x$y$z", "pbkdf2_sha256$10$!!$!!"]
)
def test_malformed_hash_never_matches(encoded: str) -> None:
    assert check_password("anything", encoded) is False


def test_verify_password_gives_role_or_nothing() -> None:
    settings = _settings_with_users(alice=("Alice-pass1", "approver"), bob=("Bob-pass1", "viewer"))
    alice = verify_password(settings, "alice", "Alice-pass1")
    assert alice == Identity("alice", Role.APPROVER, source="password")
    assert verify_password(settings, "alice", "wrong") is None
    assert verify_password(settings, "mallory", "Alice-pass1") is None
    assert verify_password(settings, "bob", "Bob-pass1").role is Role.VIEWER


def test_modes_follow_configuration() -> None:
    assert sign_in(Settings()).mode == "demo"
    users = _settings_with_users(a=("Passw0rd!", "admin"))
    assert sign_in(users).mode == "password"
    assert sign_in(Settings(oidc_configured=True)).mode == "oidc"
    assert sign_in(Settings(auth={"mode": "demo", "users": users.auth["users"]})).mode == "demo"


def test_viewer_cannot_approve() -> None:
    with pytest.raises(PermissionDenied, match="viewer"):
        require_approver(Identity("vera", Role.VIEWER))
    require_approver(Identity("ada", Role.ADMIN))
    require_approver(Identity("otto", Role.APPROVER))


@pytest.mark.parametrize("name", ["", "   ", "system:timeout", "SYSTEM:x", "<script>", "a" * 80, "x\x00y"])
def test_demo_names_are_validated(name: str) -> None:
    with pytest.raises(InvalidIdentity):
        demo_identity(name, "approver")


def test_demo_identity_normalises_and_checks_role() -> None:
    assert demo_identity("  Jane   Doe ", "Approver") == Identity("Jane Doe", Role.APPROVER)
    with pytest.raises(InvalidIdentity, match="unknown role"):
        demo_identity("jane", "root")


def test_oidc_roles_by_email_default_viewer() -> None:
    settings = Settings(auth={"oidc_roles": {"Ops@Example.com": "approver"}}, oidc_configured=True)
    assert (
        identity_from_oidc({"is_logged_in": True, "email": "ops@example.com"}, settings).role is Role.APPROVER
    )
    assert identity_from_oidc({"is_logged_in": True, "email": "x@example.com"}, settings).role is Role.VIEWER
    assert identity_from_oidc({"is_logged_in": False}, settings) is None
    assert identity_from_oidc({}, settings) is None
