"""Identities and roles.

Three ways to know who is at the console, chosen by what `.streamlit/secrets.toml` configures
(:mod:`console.access.signin` decides which, and fails closed on a broken configuration):

- ``demo`` (nothing configured, and nothing real to act on, or ``CONSOLE_DEMO_IDENTITY=1``): the
  operator picks a name and role; the UI shows a demo banner.
- ``password``: ``[console_auth.users.<name>]`` tables with ``password_hash`` (PBKDF2-SHA256, made by
  ``python -m console.access.auth hash``) and ``role``.
- ``oidc``: Streamlit's ``st.login`` (its own ``[auth]`` table); roles come from
  ``[console_auth.oidc_roles]`` (e-mail → role), else ``oidc_default_role`` (viewer by default).

Roles are checked again wherever an action is taken (see :mod:`console.access.approvals`): the UI hiding a
button is a convenience, not the control.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as pysecrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from getpass import getpass
from typing import Any

from console.domain.names import InvalidName, canonical_name
from console.settings import Settings

PBKDF2_ITERATIONS = 600_000


class Role(StrEnum):
    VIEWER = "viewer"
    APPROVER = "approver"
    ADMIN = "admin"


@dataclass(frozen=True)
class Identity:
    name: str
    role: Role
    source: str = "demo"

    @property
    def can_approve(self) -> bool:
        return self.role in (Role.APPROVER, Role.ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class PermissionDenied(Exception):
    """The identity may not do this. The message is fit to show the operator."""


class InvalidIdentity(ValueError):
    pass


def require_approver(identity: Identity) -> None:
    if not identity.can_approve:
        raise PermissionDenied(
            f"{identity.name} has the {identity.role.value} role and cannot approve or reject"
        )


def parse_role(value: Any) -> Role:
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        raise InvalidIdentity(f"unknown role {value!r}: use viewer, approver or admin") from None


def validate_name(name: object) -> str:
    """The canonical form of a person's name (NFKC, trimmed, inner whitespace collapsed), or
    :class:`InvalidIdentity` (control characters, empty, over-long, the reserved ``system:``
    prefix). Every identity that acts goes through this, in the approval service itself; the
    rules are :func:`console.domain.names.canonical_name`'s."""
    try:
        return canonical_name(name)
    except InvalidName as exc:
        raise InvalidIdentity(str(exc)) from None


def demo_identity(name: str, role: str | Role) -> Identity:
    return Identity(validate_name(name), parse_role(role), source="demo")


# --- passwords -------------------------------------------------------------------------------


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    if not password:
        raise ValueError("empty password")
    salt = salt or pysecrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"pbkdf2_sha256${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, encoded: str) -> bool:
    """Constant-time check of a password against ``pbkdf2_sha256$iter$salt$hash``."""
    try:
        scheme, iterations, salt, expected = encoded.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
        return hmac.compare_digest(digest, base64.b64decode(expected))
    except (ValueError, TypeError, AttributeError):
        return False


def configured_users(settings: Settings) -> Mapping[str, Any]:
    users = settings.auth.get("users") or {}
    return users if isinstance(users, Mapping) else {}


def verify_password(settings: Settings, name: str, password: str) -> Identity | None:
    """The identity for a correct name/password pair, else None (same answer for unknown names).
    The name is looked up in canonical form (``"carol "`` is ``carol``)."""
    try:
        name = validate_name(name)
    except InvalidIdentity:
        name = ""
    user = configured_users(settings).get(name) if name else None
    encoded = user.get("password_hash", "") if isinstance(user, Mapping) else ""
    # Check a dummy hash for unknown users so timing does not reveal which names exist.
    ok = check_password(password, encoded or _dummy_hash())
    if not (ok and encoded and isinstance(user, Mapping)):
        return None
    try:
        return Identity(validate_name(name), parse_role(user.get("role", "viewer")), source="password")
    except InvalidIdentity:
        return None


@cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password", salt=b"\0" * 16)


# --- OIDC ----------------------------------------------------------------------------------------
# Which sign-in applies (password, OIDC, demo, none, or a broken configuration) is decided by
# console.access.signin.sign_in.


def identity_from_oidc(user_info: Mapping[str, Any], settings: Settings) -> Identity | None:
    """Map a logged-in OIDC user (``st.user``) to an identity; None when not logged in."""
    if not user_info or not user_info.get("is_logged_in", True):
        return None
    email = str(user_info.get("email") or "").strip().lower()
    if not email:
        return None
    roles = {str(k).lower(): v for k, v in (settings.auth.get("oidc_roles") or {}).items()}
    role = roles.get(email, settings.auth.get("oidc_default_role", "viewer"))
    try:
        return Identity(validate_name(email), parse_role(role), source="oidc")
    except InvalidIdentity:
        return None


def main(argv: list[str]) -> int:
    """``python -m console.access.auth hash`` prints a hash to paste into secrets.toml."""
    if argv[:1] != ["hash"]:
        print("usage: python -m console.access.auth hash", file=sys.stderr)
        return 2
    password = getpass("Password: ")
    if not password or password != getpass("Again: "):
        print("passwords empty or different", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
