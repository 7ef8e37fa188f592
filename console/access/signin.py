"""How people sign in, decided from the settings alone, failing closed.

:func:`sign_in` reads the settings (``[console_auth]`` and Streamlit's ``[auth]`` in
``.streamlit/secrets.toml``, ``CONSOLE_DEMO_IDENTITY``, and what makes the console act for real:
Kestra, a live executor in ``CONSOLE_SERVICES_FILE``, the HTTP API) and answers with one
:class:`SignIn`:

- ``password`` / ``oidc``: a configured sign-in;
- ``demo``: anyone picks a name and role. Only where the console acts on nothing real, or where
  ``CONSOLE_DEMO_IDENTITY=1`` says so explicitly (then every page shows a red banner);
- ``none``: no sign-in configured where demo identity is off: the console can be read, nobody can
  decide, and the sidebar says how to set up a password or OIDC;
- ``broken``: a sign-in configuration that cannot be read as meant (a users array instead of
  tables, a non-table ``console_auth``, an ``[auth]`` without ``client_id``, a user without a valid
  hash or role, ...). Nobody can decide and the page names each problem; never demo mode.

The pages draw from it and the approval service enforces it (:mod:`console.access.approvals`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from console.access.auth import InvalidIdentity, parse_role, validate_name
from console.domain.names import same_person
from console.settings import Settings
from console.telemetry.config import load_services
from console.telemetry.errors import NoSourceConfigured

Mode = Literal["password", "oidc", "demo", "none", "broken"]

HASH_COMMAND = "python -m console.access.auth hash"
AUTH_KEYS = ("mode", "users", "oidc_roles", "oidc_default_role")
USER_KEYS = ("password_hash", "role")
OIDC_TOP_KEYS = ("redirect_uri", "cookie_secret")
OIDC_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
NO_USERS = "no user is configured: add a [console_auth.users.<name>] table with password_hash and role"
NO_OIDC = (
    "Streamlit's [auth] table is not configured: add redirect_uri, cookie_secret, client_id, "
    "client_secret and server_metadata_url"
)
SETUP_HELP = (
    "Set up a password: run `" + HASH_COMMAND + "`, then add to .streamlit/secrets.toml a table "
    '`[console_auth.users.<name>]` with `password_hash = "<the hash>"` and '
    '`role = "approver"` (viewer, approver or admin). Or configure OIDC: Streamlit\'s `[auth]` table '
    "(redirect_uri, cookie_secret, client_id, client_secret, server_metadata_url) and "
    "`[console_auth.oidc_roles]` (e-mail = role)."
)


@dataclass(frozen=True)
class SignIn:
    mode: Mode
    problems: tuple[str, ...] = ()
    """Why the configuration is broken, one line each, naming the key and the fix."""
    live: tuple[str, ...] = ()
    """What makes the console act for real here (so demo identity is off unless enabled)."""
    notes: tuple[str, ...] = ()
    """Things worth saying that are not errors (e.g. a demo mode asked for but not allowed)."""

    @property
    def broken(self) -> bool:
        return self.mode == "broken"

    @property
    def demo_allowed(self) -> bool:
        """Whether a picked name and role (an identity of source ``demo``) may act."""
        return self.mode == "demo"

    @property
    def demo_on_live(self) -> bool:
        """Demo identity explicitly enabled where the console acts for real: the red banner."""
        return self.mode == "demo" and bool(self.live)

    @property
    def can_sign_in(self) -> bool:
        return self.mode in ("password", "oidc", "demo")

    def error_line(self) -> str:
        """One line for a refusal: why nobody can decide."""
        if self.broken:
            first = self.problems[0] if self.problems else "unreadable"
            more = f" (and {len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
            return f"the sign-in configuration is broken: {first}{more}; nobody can decide until it is fixed"
        if self.mode == "none":
            return (
                f"no sign-in is configured and demo identity is off ({why_live(self.live)}); "
                "configure a password or OIDC sign-in"
            )
        return ""


def why_live(live: tuple[str, ...]) -> str:
    return "this console acts for real: " + ", ".join(live) if live else "demo identity is off"


def sign_in(settings: Settings) -> SignIn:
    """The sign-in that applies, or ``broken`` with every problem found."""
    live = live_reasons(settings)
    problems = config_problems(settings)
    if problems:
        return SignIn("broken", tuple(problems), live)
    auth = settings.auth
    users = auth.get("users") or {}
    oidc = oidc_configured(settings)
    explicit = str(auth.get("mode", "") or "").strip().lower()
    demo_ok = not live or settings.demo_identity
    if explicit == "password" and not users:
        return SignIn("broken", (f'console_auth.mode is "password" but {NO_USERS}',), live)
    if explicit == "oidc" and not oidc:
        return SignIn("broken", (f'console_auth.mode is "oidc" but {NO_OIDC}',), live)
    if explicit in ("password", "oidc"):
        return SignIn(explicit, live=live)  # type: ignore[arg-type]
    if explicit == "demo":
        if demo_ok:
            return SignIn("demo", live=live)
        note = (
            'console_auth.mode = "demo" is not allowed here (' + why_live(live) + "); set "
            "CONSOLE_DEMO_IDENTITY=1 to allow it anyway"
        )
        return SignIn("none", live=live, notes=(note,))
    if oidc:
        return SignIn("oidc", live=live)
    if users:
        return SignIn("password", live=live)
    return SignIn("demo" if demo_ok else "none", live=live)


def oidc_configured(settings: Settings) -> bool:
    shape = settings.oidc_shape
    if isinstance(shape, Mapping):
        return _has_client_id(shape)
    return bool(settings.oidc_configured) and shape is None


def oidc_providers(settings: Settings) -> list[str | None]:
    """What ``st.login`` takes: None for the [auth] table's own client, else each provider table."""
    shape = settings.oidc_shape
    if not isinstance(shape, Mapping):
        return [None]
    if shape.get("client_id"):
        return [None]
    return [name for name, value in shape.items() if isinstance(value, Mapping) and value.get("client_id")]


def _has_client_id(shape: Mapping[str, Any]) -> bool:
    return bool(shape.get("client_id")) or any(
        isinstance(v, Mapping) and v.get("client_id") for v in shape.values()
    )


# --- what is wrong with a configuration ----------------------------------------------------------


def _article(kind: str) -> str:
    return ("an " if kind[:1] in "aeiou" else "a ") + kind


def config_problems(settings: Settings) -> list[str]:
    """Every problem of the sign-in configuration, one line each with the fix; [] when usable."""
    problems: list[str] = []
    if settings.load_error:
        problems.append(f"the settings could not be read ({settings.load_error})")
    if settings.auth_type not in ("", "table"):
        if settings.auth_type == "array of tables":
            problems.append(
                "[[console_auth]] is an array of tables; write one [console_auth] table "
                "(users as [console_auth.users.<name>])"
            )
        else:
            problems.append(
                f"console_auth in secrets.toml is {_article(settings.auth_type)}, not a table; write a "
                "[console_auth] table (users as [console_auth.users.<name>])"
            )
    auth = settings.auth if isinstance(settings.auth, Mapping) else {}
    for key in auth:
        if key not in AUTH_KEYS:
            problems.append(f"console_auth.{key}: unknown key (known: {', '.join(AUTH_KEYS)})")
    mode = auth.get("mode")
    if mode is not None and str(mode).strip().lower() not in ("password", "oidc", "demo"):
        problems.append(f"console_auth.mode: {mode!r} is not password, oidc or demo")
    if "users" in auth:
        problems += _user_problems(auth["users"])
    if "oidc_roles" in auth:
        roles = auth["oidc_roles"]
        if not isinstance(roles, Mapping):
            problems.append(
                "console_auth.oidc_roles must be a table of e-mail = role ([console_auth.oidc_roles])"
            )
        else:
            for email, role in roles.items():
                problems += _role_problem(f"console_auth.oidc_roles.{email!r}", role)
    if "oidc_default_role" in auth:
        problems += _role_problem("console_auth.oidc_default_role", auth["oidc_default_role"])
    problems += _oidc_problems(settings.oidc_shape)
    return problems


def _role_problem(where: str, role: Any) -> list[str]:
    try:
        parse_role(role)
    except InvalidIdentity:
        return [f"{where}: role {role!r} is not viewer, approver or admin"]
    return []


def _user_problems(users: Any) -> list[str]:
    if isinstance(users, list):
        return [
            "[[console_auth.users]] is an array; write one table per user: "
            "[console_auth.users.<name>] with password_hash and role"
        ]
    if not isinstance(users, Mapping):
        kind = "string" if isinstance(users, str) else type(users).__name__
        return [
            f"console_auth.users is {_article(kind)}; write one table per user: "
            "[console_auth.users.<name>] with password_hash and role"
        ]
    problems: list[str] = []
    for name, user in users.items():
        where = f"console_auth.users.{name}"
        try:
            if validate_name(name) != name:
                problems.append(
                    f"{where}: write the name as {validate_name(name)!r} (trimmed, no double spaces)"
                )
        except InvalidIdentity as exc:
            problems.append(f"console_auth.users.{name!r}: not a usable name ({exc})")
        if not isinstance(user, Mapping):
            problems.append(f"{where}: must be a table with password_hash and role")
            continue
        for key in user:
            if key not in USER_KEYS:
                hint = (
                    f"; store a hash made with `{HASH_COMMAND}` in password_hash, never the password"
                    if "pass" in str(key).lower()
                    else ""
                )
                problems.append(f"{where}.{key}: unknown key (known: password_hash, role){hint}")
        encoded = user.get("password_hash")
        if not encoded:
            problems.append(f"{where}.password_hash: missing; make one with `{HASH_COMMAND}`")
        elif not _well_formed_hash(encoded):
            problems.append(
                f"{where}.password_hash: not a pbkdf2_sha256 hash; make one with `{HASH_COMMAND}`"
            )
        if "role" not in user:
            problems.append(f"{where}.role: missing (viewer, approver or admin)")
        else:
            problems += _role_problem(f"{where}.role", user["role"])
    names = [str(name) for name in users]
    for i, name in enumerate(names):
        twin = next((other for other in names[:i] if same_person(other, name)), None)
        if twin is not None:
            problems.append(
                f"console_auth.users: {name!r} and {twin!r} are the same person to the console (names "
                "compare ignoring case and look-alike letters); keep one"
            )
    return problems


def _well_formed_hash(encoded: Any) -> bool:
    if not isinstance(encoded, str):
        return False
    parts = encoded.split("$")
    return len(parts) == 4 and parts[0] == "pbkdf2_sha256" and parts[1].isdigit() and all(parts[2:])


def _oidc_problems(shape: Any) -> list[str]:
    if shape is None:
        return []
    if not isinstance(shape, Mapping):
        return [
            f"[auth] in secrets.toml is {_article(str(shape))}, not a table; write an [auth] table "
            "(redirect_uri, cookie_secret, client_id, client_secret, server_metadata_url) or remove it"
        ]
    problems: list[str] = []
    if not _has_client_id(shape):
        problems.append(
            "[auth] has no client_id: add client_id, client_secret and server_metadata_url to [auth] "
            "(or to an [auth.<provider>] table), or remove [auth] to sign in with passwords"
        )
    for key in OIDC_TOP_KEYS:
        if not shape.get(key):
            problems.append(f"[auth].{key}: missing (Streamlit's st.login needs it)")
    providers = {"": shape} if shape.get("client_id") else {}
    providers.update({f".{k}": v for k, v in shape.items() if isinstance(v, Mapping) and v.get("client_id")})
    for suffix, provider in providers.items():
        for key in OIDC_PROVIDER_KEYS:
            if not provider.get(key):
                problems.append(f"[auth{suffix}].{key}: missing (Streamlit's st.login needs it)")
    return problems


# --- where the console acts for real ----------------------------------------------------------


def live_reasons(settings: Settings) -> tuple[str, ...]:
    """What makes this console act on real systems (each one line), so a picked identity must not."""
    reasons: list[str] = []
    if settings.kestra_url:
        reasons.append("Kestra (KESTRA_URL)")
    if settings.services_file is not None:
        reasons += _live_executors(settings.services_file, settings)
    if settings.api_token:
        reasons.append("the HTTP API (CONSOLE_API_TOKEN)")
    if settings.api_tokens_configured:
        reasons.append("the HTTP API ([console_api] tokens)")
    return tuple(reasons)


def _live_executors(path: Path, settings: Settings) -> list[str]:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return []  # nothing configured
    except OSError as exc:
        return [
            f"CONSOLE_SERVICES_FILE cannot be read ({type(exc).__name__}), so it may name a live executor"
        ]
    return list(_executors_of(str(path), stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=16)
def _executors_of(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """Read through console.telemetry's loader (cached per file version: pages ask on every run)."""
    try:
        config = load_services(Path(path))
    except NoSourceConfigured:
        return ()
    except Exception as exc:  # a broken file may still name a live executor: fail closed
        first = " ".join(str(exc).split())[:200] or type(exc).__name__
        return (f"CONSOLE_SERVICES_FILE cannot be read ({first}), so it may name a live executor",)
    out = []
    for name, service in sorted(config.services.items()):
        if service.executor is None:
            continue  # no executor section: the simulated one
        kind = str(service.executor.get("type") or "an executor without a type").strip()
        if kind != "simulated":
            out.append(f"a live executor ({kind} for {name} in CONSOLE_SERVICES_FILE)")
    return tuple(out)


__all__ = [
    "SETUP_HELP",
    "SignIn",
    "config_problems",
    "live_reasons",
    "oidc_configured",
    "oidc_providers",
    "sign_in",
]
