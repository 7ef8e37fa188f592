"""Bearer tokens of the HTTP API: who a token is, what role it has, and whether it may act for people.

Two ways to configure tokens, both read from the settings (never from a request):

- ``CONSOLE_API_TOKEN`` (environment or the top of secrets.toml): one token. It acts as
  ``CONSOLE_API_TOKEN_NAME`` (default ``api``) with the role ``CONSOLE_API_TOKEN_ROLE``, **viewer by
  default**: a single shared token tends to be pasted into Alertmanager, CI and chat-bot configs,
  so by itself it reads and (later) announces, but deciding an approval needs an explicit
  ``approver`` or ``admin`` role.
- Hashed tokens in secrets.toml, one table each (the value of the token is never stored)::

      [console_api.tokens.chatops]
      sha256 = "9f86d0...(64 hex digits)"   # python -m console.access.tokens hash
      role = "approver"                      # viewer | approver | admin (default viewer)
      act_for_users = true                   # a bot deciding for the person who clicked
      identity = "chatops-bot"               # required: the person (or bot) it acts for

**Every token maps to a person.** A table must say whom it acts for in ``identity``; one without it
is a broken configuration (a person's two tokens named ``alice-laptop`` and ``alice-ci`` would
otherwise act as two people and cast both votes of a CRITICAL action). Tokens naming the same
``identity`` are one person: one vote between them. When ``identity`` is a configured console user
(a password user or an OIDC e-mail), the token's role is capped by that user's role (a token cannot
make a viewer an approver).

A token allowed to act for users names the person in the request (``actor``); that person's role
comes from the configured users (``[console_auth.users.<name>].role``) or OIDC roles
(``[console_auth.oidc_roles]``), never from the request, capped by the token's own role (a viewer
bot cannot approve by naming an admin). A person who is not configured cannot act.

Tokens are compared in constant time as SHA-256 digests (every configured token is checked, so
timing says nothing about which one matched). Random tokens carry 256 bits, so one unsalted hash
is enough: there is nothing to brute-force offline. A configuration that cannot be read fails
closed: no token is accepted, and :attr:`TokenRegistry.problems` says why (names and keys only;
no value is ever echoed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as pysecrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from console.access.auth import (
    Identity,
    InvalidIdentity,
    PermissionDenied,
    Role,
    configured_users,
    parse_role,
    validate_name,
)
from console.domain.names import same_person
from console.settings import Settings

TOKEN_PREFIX = "dlc_"  # noqa: S105 - a marker, not a secret
"""Prefix of generated tokens, so secret scanners and people recognise one."""
SHORT_TOKEN = 16
"""A configured ``CONSOLE_API_TOKEN`` shorter than this is accepted with a warning."""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
TOKEN_KEYS = ("sha256", "role", "act_for_users", "identity", "rate_per_minute", "burst")
HOW_TO_ENABLE = (
    "set CONSOLE_API_TOKEN, or add a [console_api.tokens.NAME] table with the sha256 printed by "
    "`python -m console.access.tokens hash` to .streamlit/secrets.toml, then restart the console"
)


class ActorNotAllowed(PermissionDenied):
    """The request names a person the token may not act for."""


@dataclass(frozen=True)
class ApiToken:
    """One configured token (its digest, never its value)."""

    name: str
    """The configuration's name for it (``env`` for ``CONSOLE_API_TOKEN``)."""
    identity: Identity
    act_for_users: bool = False
    rate_per_minute: float | None = None
    burst: int | None = None
    digest: bytes = field(default=b"", repr=False)

    @property
    def caller_source(self) -> str:
        """How the console knows who called with this token (the approval card's words)."""
        return f"the API token {self.name} (authenticated)"


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def hash_token(token: str) -> str:
    """The ``sha256`` value to write in secrets.toml for ``token`` (64 hex digits)."""
    return token_digest(token).hex()


def new_token() -> str:
    """A new random token: the prefix and 256 bits, URL-safe."""
    return TOKEN_PREFIX + pysecrets.token_urlsafe(32)


@dataclass(frozen=True)
class TokenRegistry:
    """The tokens the settings configure. Empty ``tokens`` with no ``problems`` = the API is off;
    any ``problems`` = the configuration is broken and no token is accepted (fail closed)."""

    tokens: tuple[ApiToken, ...] = ()
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.tokens) and not self.problems

    def verify(self, presented: str | None) -> ApiToken | None:
        """The token matching ``presented``, or None. Every configured digest is compared (in
        constant time), whatever matched first."""
        if not self.enabled or not presented:
            return None
        digest = token_digest(presented)
        found: ApiToken | None = None
        for token in self.tokens:
            if hmac.compare_digest(digest, token.digest) and found is None:
                found = token
        return found


def _bool(value: Any, where: str, problems: list[str]) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        problems.append(f"{where}: must be true or false")
        return False
    return value


def _positive(value: Any, where: str, problems: list[str], *, integer: bool) -> Any:
    if value is None:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not value > 0:
        problems.append(f"{where}: must be a positive {'whole ' if integer else ''}number")
        return None
    return value


def _role(value: Any, where: str, problems: list[str]) -> Role:
    try:
        return parse_role(value if value is not None else "viewer")
    except InvalidIdentity:
        problems.append(f"{where}: unknown role (use viewer, approver or admin)")
        return Role.VIEWER


def _name(value: Any, where: str, problems: list[str]) -> str | None:
    try:
        return validate_name(str(value))
    except InvalidIdentity as exc:
        problems.append(f"{where}: {exc}")
        return None


def _env_token(settings: Settings, problems: list[str], warnings: list[str]) -> ApiToken | None:
    """``CONSOLE_API_TOKEN``, the one token of the environment, if it is set and usable."""
    if not settings.api_token:
        return None
    value = settings.api_token.get()
    name = _name(settings.api_identity, "CONSOLE_API_TOKEN_NAME", problems)
    role = _role(settings.api_role, "CONSOLE_API_TOKEN_ROLE", problems)
    if value != value.strip() or any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        problems.append("CONSOLE_API_TOKEN: contains spaces or control characters")
    if len(value) < SHORT_TOKEN:
        warnings.append(
            f"CONSOLE_API_TOKEN is short ({len(value)} characters): generate one with "
            "`python -m console.access.tokens hash`"
        )
    if name is None:
        return None
    identity = Identity(name, _capped(role, name, settings), source="api-token:env")
    return ApiToken("env", identity, digest=token_digest(value))


def _token_tables(settings: Settings, problems: list[str]) -> Mapping[str, Any]:
    """The ``[console_api.tokens.NAME]`` tables (empty, with a problem line, when malformed)."""
    raw = settings.api if settings.api is not None else {}
    if not isinstance(raw, Mapping):
        problems.append("[console_api]: must be a table")
        raw = {}
    unknown = sorted(str(k) for k in raw if k != "tokens")
    if unknown:
        problems.append(f"[console_api]: unknown key(s) {', '.join(unknown)} (allowed: tokens)")
    table = raw.get("tokens", {})
    if not isinstance(table, Mapping):
        problems.append("[console_api.tokens]: must be a table of [console_api.tokens.NAME] tables")
        return {}
    return table


def _table_token(
    key: str, entry: Any, settings: Settings, problems: list[str], warnings: list[str]
) -> ApiToken | None:
    """One ``[console_api.tokens.KEY]`` table as a token, or None with its problems noted."""
    where = f"[console_api.tokens.{key}]"
    if not isinstance(entry, Mapping):
        problems.append(f"{where}: must be a table (sha256, role, act_for_users)")
        return None
    before = len(problems)
    bad_keys = sorted(str(k) for k in entry if k not in TOKEN_KEYS)
    if bad_keys:
        hint = " (the token itself is never written here: only its sha256)" if "token" in bad_keys else ""
        problems.append(f"{where}: unknown key(s) {', '.join(bad_keys)}{hint}")
    digest_hex = entry.get("sha256")
    if not isinstance(digest_hex, str) or not _HEX64.match(digest_hex.strip().lower()):
        problems.append(f"{where}.sha256: must be 64 hex digits (python -m console.access.tokens hash)")
    role = _role(entry.get("role"), f"{where}.role", problems)
    act_for = _bool(entry.get("act_for_users"), f"{where}.act_for_users", problems)
    if entry.get("identity") is None:
        problems.append(
            f'{where}.identity: missing: name the person this token acts for (identity = "alice"); '
            "tokens of one person name the same identity and vote once"
        )
    name = _name(entry.get("identity"), f"{where}.identity", problems)
    rate = _positive(entry.get("rate_per_minute"), f"{where}.rate_per_minute", problems, integer=False)
    burst = _positive(entry.get("burst"), f"{where}.burst", problems, integer=True)
    if len(problems) > before or name is None:
        return None
    capped = _capped(role, name, settings)
    if capped != role:
        warnings.append(
            f"{where}: acts for {name}, a configured {capped.value}: its role {role.value} is "
            f"lowered to {capped.value}"
        )
    return ApiToken(
        str(key),
        Identity(name, capped, source=f"api-token:{key}"),
        act_for_users=act_for,
        rate_per_minute=float(rate) if rate is not None else None,
        burst=int(burst) if burst is not None else None,
        digest=bytes.fromhex(str(digest_hex).strip().lower()),
    )


def load_tokens(settings: Settings) -> TokenRegistry:
    """Read and check every token the settings configure (never raises)."""
    problems: list[str] = []
    warnings: list[str] = []
    candidates = [_env_token(settings, problems, warnings)]
    for key, entry in _token_tables(settings, problems).items():
        candidates.append(_table_token(str(key), entry, settings, problems, warnings))
    tokens = [token for token in candidates if token is not None]
    seen: dict[bytes, str] = {}
    for token in tokens:
        if token.digest in seen:
            problems.append(f"tokens {seen[token.digest]} and {token.name} are the same token")
        seen.setdefault(token.digest, token.name)
    return TokenRegistry(tuple(tokens), tuple(problems), tuple(warnings))


def _capped(role: Role, name: str, settings: Settings) -> Role:
    """``role``, lowered to the role the sign-in configuration gives ``name`` when it is a
    configured person: a token never has more power than the person it acts for."""
    try:
        configured = _configured_role(settings, name)
    except InvalidIdentity:
        configured = None
    return role if configured is None else min(role, configured, key=_ROLE_ORDER.index)


def _configured_role(settings: Settings, name: str) -> Role | None:
    """The role the sign-in configuration gives ``name`` (a password user, or an OIDC e-mail)."""
    users = configured_users(settings)
    matches = [user for key, user in users.items() if same_person(str(key), name)]
    if len(matches) == 1 and isinstance(matches[0], Mapping):
        return parse_role(matches[0].get("role", "viewer"))
    roles = settings.auth.get("oidc_roles") if isinstance(settings.auth, Mapping) else None
    if isinstance(roles, Mapping):
        for email, role in roles.items():
            if same_person(str(email).strip(), name):
                return parse_role(role)
    return None


def acting_identity(token: ApiToken, actor: str | None, settings: Settings) -> Identity:
    """Who a request acts as: the token's own identity, or, for a token that acts for users, the
    configured person named ``actor`` with the role the configuration gives them.

    Raises :class:`~console.access.auth.InvalidIdentity` for a malformed name and
    :class:`ActorNotAllowed` when the token may not act for that person. The role is the lower of
    the person's configured role and the token's."""
    if actor is None:
        if token.act_for_users:
            raise InvalidIdentity(
                "actor: required: this token acts for people, so name the person who decided"
            )
        return token.identity
    if not token.act_for_users:
        raise ActorNotAllowed(
            f"this token acts as {token.identity.name} and may not act for other people "
            "(act_for_users is off); leave actor out"
        )
    name = validate_name(actor)
    try:
        role = _configured_role(settings, name)
    except InvalidIdentity:
        role = None
    if role is None:
        raise ActorNotAllowed(
            f"{name} is not a configured console user: add [console_auth.users.NAME] (or an "
            "[console_auth.oidc_roles] entry) so their role is known"
        )
    # a delegate never has more power than it was given: the lower of the two roles
    effective = min(role, token.identity.role, key=_ROLE_ORDER.index)
    return Identity(name, effective, source=f"api-token:{token.name}")


_ROLE_ORDER = [Role.VIEWER, Role.APPROVER, Role.ADMIN]


def main(argv: list[str]) -> int:
    """``python -m console.access.tokens hash``: a new random token and its secrets.toml table.
    ``hash --stdin`` prints the sha256 of a token read from standard input instead."""
    if not argv or argv[0] != "hash" or argv[1:] not in ([], ["--stdin"]):
        print("usage: python -m console.access.tokens hash [--stdin]", file=sys.stderr)
        return 2
    if argv[1:] == ["--stdin"]:
        token = sys.stdin.readline().strip()
        if not token:
            print("no token on standard input", file=sys.stderr)
            return 2
        print(hash_token(token))
        return 0
    token = new_token()
    print(f"token (give it to the client; it is shown only now):\n  {token}\n")
    print("add to .streamlit/secrets.toml (rename NAME, pick the role):")
    print(f'  [console_api.tokens.NAME]\n  sha256 = "{hash_token(token)}"\n  role = "viewer"')
    print('  identity = "NAME"        # the person (or bot) this token acts for')
    print("  act_for_users = false")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
