"""Password sign-in with limits: the one way a name and a password become an identity, for the
sign-in form of the pages and the command line alike.

Failures are counted per person (the name's canonical key, so ``Bob`` and ``bob `` share one count)
and per client address, in the store (a restart forgives nothing). ``CONSOLE_SIGNIN_ATTEMPTS``
(5) wrong passwords in a row are allowed; each further one locks the person and the address out
for a time that doubles (1 s, 2 s, 4 s ... up to ``CONSOLE_SIGNIN_MAX_LOCK_S``, 15 minutes). While
locked, an attempt is refused without looking at the password, the right one included: that is
what stops a guesser. A success clears the person's count (not the address's: someone else's
guessing from the same place stays counted). A count left alone for a day starts again.

Every failure and every refusal while locked is audited (``signin.failed``, ``signin.locked``), as
is every success (``signin.succeeded``): who was tried, from where, through what, how many times;
never the password.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from console.access.auth import Identity, InvalidIdentity, PermissionDenied, validate_name, verify_password
from console.domain.names import name_key, requester_name
from console.settings import Settings
from console.storage import Store

FORGET_AFTER_S = 86_400.0
"""A run of failures this old is forgotten: the next failure counts from one again."""
WRONG = "unknown user or wrong password"


def now() -> float:
    """The clock of the limits (unix seconds); tests replace it."""
    return time.time()


class SignInRefused(PermissionDenied):
    """The sign-in did not happen; the message is one line for the person signing in."""


class SignInLocked(SignInRefused):
    """Too many failures lately for this person or from this address."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Attempt:
    """Who is being tried, from where, and through what (``console page``, ``command line``)."""

    name: str
    address: str
    via: str

    @property
    def keys(self) -> tuple[str, str]:
        return f"user:{name_key(self.name) or '?'}", f"address:{self.address or 'unknown'}"

    @property
    def actor(self) -> str:
        """How the audit trail names whoever was tried (never a reserved or invalid name)."""
        try:
            return validate_name(self.name)
        except InvalidIdentity:
            return "(invalid name)"


def _lock_s(failures: int, settings: Settings) -> float:
    over = failures - settings.signin_attempts
    return 0.0 if over < 0 else min(float(2 ** min(over, 30)), settings.signin_max_lock_s)


def password_sign_in(
    store: Store, settings: Settings, name: str, password: str, *, address: str, via: str
) -> Identity:
    """The identity for ``name`` and ``password``, within the limits (module doc). Raises
    :class:`SignInLocked` (try again later) or :class:`SignInRefused` (unknown user or wrong
    password: the same answer for both)."""
    attempt = Attempt(str(name or ""), address, via)
    moment = now()
    rows = store.sign_in_failures.get(attempt.keys)
    wait = max((row["locked_until"] - moment for row in rows.values()), default=0.0)
    detail = {"via": via, "address": attempt.address, "claimed_name": requester_name(name, fallback="")[:100]}
    if wait > 0:
        store.audit.record(attempt.actor, "signin.locked", None, {**detail, "retry_after_s": math.ceil(wait)})
        raise SignInLocked(
            f"too many failed sign-ins for this user or from this address: try again in {math.ceil(wait)} s",
            wait,
        )
    identity = verify_password(settings, attempt.name, password)
    with store.db.write() as conn:
        if identity is not None:
            store.sign_in_failures.clear_in(conn, attempt.keys[0])
            store.audit.record_in(
                conn, identity.name, "signin.succeeded", None, {"via": via, "address": attempt.address}
            )
            return identity
        counts = {}
        for key in attempt.keys:
            row = store.sign_in_failures.get([key], conn).get(key)
            fresh = row is None or moment - row["last_at"] > FORGET_AFTER_S
            failures = 1 if fresh else int(row["failures"]) + 1
            lock = _lock_s(failures, settings)
            store.sign_in_failures.set_in(
                conn, key, failures=failures, last_at=moment, locked_until=moment + lock
            )
            counts[key] = (failures, lock)
        user_failures = counts[attempt.keys[0]][0]
        locked_for = max(lock for _, lock in counts.values())
        store.audit.record_in(
            conn,
            attempt.actor,
            "signin.failed",
            None,
            {**detail, "failures": user_failures, "locked_for_s": math.ceil(locked_for) or None},
        )
    if locked_for:
        raise SignInLocked(f"{WRONG}; signing in is locked for {math.ceil(locked_for)} s", locked_for)
    raise SignInRefused(WRONG)


__all__ = ["SignInLocked", "SignInRefused", "password_sign_in"]
