"""Password sessions that survive a reload and a new tab: a signed cookie, and its server side.

A password sign-in on a page (:func:`console.access.attempts.password_sign_in`) starts a session:
:meth:`Sessions.start` stores it (a random session id, who, the role, when it expires) with a
one-time *ticket* (stored as its SHA-256). The page hands the ticket to the browser, which exchanges it at
``POST /auth/session`` (:mod:`console.api.session`, a route on the same server) for the cookie:
:data:`COOKIE_NAME`, the session id signed with itsdangerous (``CONSOLE_SESSION_SECRET``, or a
random secret kept in ``CONSOLE_DATA_DIR/session-secret``, mode 600), ``HttpOnly``,
``SameSite=Lax``, ``Secure`` over https, expiring with the session (``CONSOLE_SESSION_HOURS``).
The ticket works once, for a minute, and carries nothing but a random value.

Every page run reads the cookie (``st.context.cookies``) and :meth:`Sessions.resume` checks it:
the signature and its age, then the stored session, which must not be revoked or expired, and
whose person must still be configured with the same role. Signing out (:meth:`Sessions.end`)
revokes the session in the store, so the cookie is dead everywhere at once, even a stolen copy;
``DELETE /auth/session`` also clears it from the browser.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets as pysecrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from console.access.auth import Identity, InvalidIdentity, configured_users, parse_role
from console.domain.models import now_text
from console.domain.names import same_person
from console.settings import Settings
from console.storage import Store

log = logging.getLogger(__name__)

COOKIE_NAME = "console_session"
SALT = "devops-loop-console.session"
TICKET_S = 60.0
"""How long a ticket may wait for the browser to exchange it."""
SECRET_FILE = "session-secret"  # noqa: S105 - a file name, not a secret


def now() -> float:
    """The sessions' clock (unix seconds); tests replace it."""
    return time.time()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session: who, and its id."""

    identity: Identity
    session_id: str


def session_secret(settings: Settings) -> str:
    """``CONSOLE_SESSION_SECRET``, or the one kept in the data directory (made once, mode 600;
    never logged)."""
    if settings.session_secret:
        return settings.session_secret.get()
    path = Path(settings.data_dir) / SECRET_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = pysecrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
    log.info("made a new session secret in %s", path)
    return value


class Sessions:
    """Password sessions on the store (module doc)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._signer = URLSafeTimedSerializer(session_secret(settings), salt=SALT)

    @property
    def max_age_s(self) -> int:
        return int(self.settings.session_hours * 3600)

    def start(self, identity: Identity) -> tuple[str, str]:
        """Store a session for a signed-in ``identity``; returns (its id, the one-time ticket the
        browser exchanges for the cookie)."""
        session_id, ticket = pysecrets.token_urlsafe(32), pysecrets.token_urlsafe(32)
        moment = now()
        with self.store.db.write() as conn:
            self.store.sessions.forget_expired_in(conn, moment)
            self.store.sessions.create_in(
                conn,
                session_id=session_id,
                name=identity.name,
                role=identity.role.value,
                source=identity.source,
                created_at=now_text(),
                expires_at=moment + self.max_age_s,
                ticket_hash=_digest(ticket),
                ticket_expires_at=moment + TICKET_S,
            )
        return session_id, ticket

    def ticket_pending(self, ticket: str) -> bool:
        """Whether the browser has not exchanged ``ticket`` yet (a page shows its hand-off until then)."""
        return self.store.sessions.ticket_pending(_digest(ticket))

    def redeem(self, ticket: object) -> str | None:
        """The cookie's value for a valid ticket (used up at once), else None."""
        if not isinstance(ticket, str) or not ticket or len(ticket) > 200:
            return None
        with self.store.db.write() as conn:
            row = self.store.sessions.redeem_ticket_in(conn, _digest(ticket), now())
        return None if row is None else self._signer.dumps(row["id"])

    def resume(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, or None (no cookie, a bad signature, too old, revoked,
        expired, or a person no longer configured with that role)."""
        session_id = self._session_id(cookie)
        return self.check(session_id) if session_id else None

    def check(self, session_id: str) -> Session | None:
        """The session ``session_id`` if it is still live (see :meth:`resume`)."""
        row = self.store.sessions.get(session_id)
        if row is None or row["revoked_at"] or row["expires_at"] < now():
            return None
        identity = _configured(self.settings, row["name"], row["role"])
        return Session(identity, session_id) if identity is not None else None

    def end(self, *, session_id: str | None = None, cookie: str | None = None) -> bool:
        """Revoke a session (by its id, or by its cookie): dead everywhere at once."""
        session_id = session_id or self._session_id(cookie, any_age=True)
        if not session_id:
            return False
        with self.store.db.write() as conn:
            ended = self.store.sessions.revoke_in(conn, session_id, now_text())
            row = self.store.sessions.get(session_id) if ended else None
            if row is not None:
                self.store.audit.record_in(
                    conn, row["name"], "signin.signed_out", None, {"via": "console page"}
                )
        return ended

    def _session_id(self, cookie: str | None, *, any_age: bool = False) -> str | None:
        if not cookie:
            return None
        try:
            value = self._signer.loads(cookie, max_age=None if any_age else self.max_age_s)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


def _configured(settings: Settings, name: str, role: str) -> Identity | None:
    """The password user ``name`` if still configured with ``role``."""
    for key, user in configured_users(settings).items():
        if same_person(str(key), name) and isinstance(user, Mapping):
            try:
                if parse_role(user.get("role")).value == role:
                    return Identity(str(key), parse_role(role), source="password")
            except InvalidIdentity:
                return None
            return None
    return None


__all__ = ["COOKIE_NAME", "Session", "Sessions", "session_secret"]
