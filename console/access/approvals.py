"""Approvals: who may decide, how many must agree, what happens when nobody does.

**Who may approve (one rule, enforced here for the pages, the command line and the HTTP API).** The
people who *started* a run are its requester (who asked for the approval: ``requested_by``), its
deployer (``deployed_by`` of the deployment) and its launcher (who launched the run: the console's
record of its own launches, ``console_launches``, and the run's ``launched_by`` label); names are
compared in canonical form (:func:`console.domain.names.same_person`). A person who started a run
is never the only one to decide its risky action, in either direction (GitHub Environments'
"prevent self-review"):

- the requester never votes on their own request (approve or reject);
- a deployer or launcher cannot approve an action that needs one approver, and cannot reject at
  all (a rejection decides alone: it keeps the deployment, and whatever it broke, live);
- on an action that needs two or more approvers (CRITICAL), at most one of the approvals may come
  from a deployer or launcher: the others must come from people who started nothing.

:func:`starter_refusal` is the rule as a pure function; :meth:`ApprovalService.vote` applies it
inside the vote's transaction and :meth:`ApprovalService.vote_refusal` lets a page say beforehand
why a button is off.

Every check runs here, on the server side, whatever the UI shows (pages, command line or HTTP
API alike): the deciding name is validated and normalised (:func:`console.access.auth.validate_name`:
no control characters, no ``system:`` names, ``"bob "`` is ``bob``), nobody decides while the
sign-in configuration is broken, an identity no credential proved (a picked demo name, a name
typed on the command line) decides only where demo identity is allowed
(:mod:`console.access.signin`), viewers cannot decide, nobody approves their own request (names
compared in canonical form, ignoring case and look-alike letters), a rejection needs a reason,
CRITICAL actions need two different approvers (counted by the store from the registry's risk), any
rejection rejects, and an approval nobody decides in time is rejected (never approved).

Decisions are idempotent and safe under concurrency: the vote and the status change happen in one
``BEGIN IMMEDIATE`` transaction with a conditional ``UPDATE ... WHERE status = 'pending'``, so of
two operators clicking at once exactly one decides and the other is told who did.

Every attempt, granted or refused, is appended to the audit trail. Once a decision is final the
engine is resumed; if that fails (Kestra down), the decision stays and the approval is marked
``resume_state = 'failed'`` until :meth:`ApprovalService.retry_resume` succeeds.

**The world as it is now.** Before an approval of an action that changes a real service counts, the
service reads what runs (:meth:`ApprovalService.check_now`, the executor's state probe): if the
service no longer runs the version the decision was about, or another switch happened since, the
approval is closed as ``superseded`` with what changed and when (:class:`Superseded`), the run is
resumed so that nothing runs, and the trail says so. A rollback is approved only to a known-good
version of the revision history (:meth:`ApprovalService.rollback_choice`: the newest one, or another
known-good one the approver picks, checked here and audited); with none, approving is refused
(:class:`NoRollbackTarget`): a rejection escalates. The target goes to the engine with the decision.

The service also owns expiry: :meth:`ApprovalService.expire_overdue` (called by :meth:`pending`,
throttled by :meth:`maybe_expire` for the engine's reads, and every few seconds by the background
timer :meth:`start_expiry_timer`), and :meth:`ApprovalService.recover`, which applies decisions
that were committed but never reached the engine. The composition root (:mod:`console.runtime`)
wires both; an engine only resumes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from console.access.auth import Identity, InvalidIdentity, PermissionDenied, require_approver, validate_name
from console.access.signin import sign_in
from console.domain.actions import ROLLBACK
from console.domain.models import format_time, parse_time
from console.domain.names import RequesterSource, requester_name, same_person
from console.domain.vocabulary import SUPERSEDED_ACTOR, TIMEOUT_ACTOR
from console.engines.backend import Backend, BackendError, BackendUnavailable
from console.loop import acting, revisions
from console.loop.steps import acts_for_real, executor_for
from console.settings import Settings
from console.storage import Connection, Store

log = logging.getLogger(__name__)

MAX_COMMENT = 2000
FINAL = ("approved", "rejected", "expired", "cancelled", "superseded")


class ApprovalError(Exception):
    """Base of the approval errors; messages are fit to show the operator."""


class ApprovalNotFound(ApprovalError, LookupError):
    pass


class AlreadyDecided(ApprovalError):
    """The approval was decided already (or this person already voted)."""


class Superseded(AlreadyDecided):
    """The service moved past the approval's decision: it was closed as superseded (the message says
    what changed and when); nothing ran."""


class NoRollbackTarget(ApprovalError):
    """A rollback cannot be approved: no known-good version to roll back to (reject it: it escalates;
    or mark a version known-good)."""


@dataclass
class VoteResult:
    status: Literal["approved", "rejected", "recorded"]
    message: str
    resumed: bool = False


def _hhmm(text: str | None) -> str:
    if not text:
        return "?"
    return parse_time(text).strftime("%H:%M UTC")


def _who(approval: dict[str, Any]) -> str:
    return approval.get("decided_by") or "unknown"


def already_message(approval: dict[str, Any]) -> str:
    status = approval["status"]
    if status == "expired":
        return (
            f"this approval expired at {_hhmm(approval.get('expires_at'))} and was rejected "
            "(nobody decided in time)"
        )
    if status == "cancelled":
        return f"this approval was cancelled at {_hhmm(approval.get('decided_at'))} (the execution stopped)"
    if status == "superseded":
        why = str(approval.get("comment") or "").removeprefix("superseded: ")
        return f"this approval was superseded at {_hhmm(approval.get('decided_at'))}: {why}"
    return f"already {status} by {_who(approval)} at {_hhmm(approval.get('decided_at'))}"


VERIFIED_SOURCES = ("password", "oidc")
"""Identity sources a credential proved (besides API tokens, ``api-token:<name>``)."""


def verified(identity: Identity) -> bool:
    """Whether a credential proved this identity: a password or OIDC sign-in, or an API token.
    Anything else (a picked demo name, a name typed on the command line) decides only where a demo
    identity may."""
    return identity.source in VERIFIED_SOURCES or identity.source.startswith("api-token:")


def launch_source(identity: Identity) -> str:
    """How the console knows who launched a run: a signed-in person, a demo identity, or another."""
    if identity.source in ("password", "oidc"):
        return RequesterSource.CONSOLE_SIGN_IN
    if identity.source == "demo":
        return RequesterSource.CONSOLE_DEMO
    return f"console ({identity.source})"


def utc_now() -> datetime:
    return datetime.now(UTC)


class ApprovalService:
    """Backend-agnostic approvals on top of the store."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        settings: Settings,
        *,
        expire_every_s: float = 2.0,
        refresh: Callable[[], str | None] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.backend = backend
        self.settings = settings
        self.refresh = refresh
        self.clock = clock
        """Now, in UTC: what deadlines are judged by (an approval is overdue once its ``expires_at``
        is past) and what decisions are stamped with. Tests move it instead of sleeping."""
        """Brings the engine's paused executions into the store (the Kestra mirror's sync); returns
        why it could not, or None."""
        self.sync_error: str | None = None
        """Why the last :meth:`pending` could not mirror the engine's paused executions (None when it
        could): the list it returned may then be incomplete, and the page must say so."""
        self._expire_every_s = expire_every_s
        self._last_expiry = 0.0
        self._expiry_lock = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def _now_text(self) -> str:
        return format_time(self.clock())

    # -- reads --------------------------------------------------------------------------------------

    def sync(self) -> None:
        """Bring the approval requests of an engine that pauses on its own (Kestra) up to date:
        its mirror copies every execution paused at the approval task, with its one approval
        request, into the store. The embedded engine creates its requests itself (no refresh)."""
        if self.refresh is None:
            return
        error = self.refresh()
        if error:
            raise BackendUnavailable(error)

    def record_launch(self, execution_id: str, identity: Identity) -> None:
        """The console launched ``execution_id`` for ``identity``: remember it, so the approval it
        may ask for names this signed-in person as the requester (on Kestra, whatever the
        execution's ``triggered_by`` input says)."""
        with self.store.db.write() as conn:
            self.store.launches.record_in(
                conn,
                execution_id,
                launched_by=identity.name,
                source=launch_source(identity),
                at=self._now_text(),
            )

    def pending(self) -> list[dict[str, Any]]:
        """Pending approvals, newest first, each with its votes so far (overdue ones are expired first)."""
        try:
            self.sync()
        except BackendError as exc:  # Kestra down: still show what we already know
            log.warning("could not mirror paused executions: %s", exc)
            self.sync_error = " ".join(str(exc).split())[:300] or type(exc).__name__
        else:
            self.sync_error = None
        self.expire_overdue()
        items = self.store.approvals.list(statuses=["pending"])
        for item in items:
            item["votes"] = self.store.approvals.votes(item["id"])
        return items

    def get(self, approval_id: str) -> dict[str, Any]:
        approval = self.store.approvals.get(approval_id)
        if approval is None:
            raise ApprovalNotFound(f"approval {approval_id} not found")
        approval["votes"] = self.store.approvals.votes(approval_id)
        return approval

    def for_execution(self, execution_id: str) -> dict[str, Any] | None:
        approval = self.store.approvals.for_execution(execution_id)
        if approval is not None:
            approval["votes"] = self.store.approvals.votes(approval["id"])
        return approval

    def decided(self, limit: int = 200) -> list[dict[str, Any]]:
        return self.store.approvals.list(statuses=list(FINAL), limit=limit)

    def history(self, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
        """The audit trail, newest first."""
        return self.store.audit.trail(limit=limit, offset=offset)

    def request(
        self,
        execution_id: str,
        *,
        plan: dict[str, Any],
        decision: dict[str, Any],
        requested_by: str,
        service: str,
        deployment_id: str | None = None,
        requested_by_source: str | None = None,
    ) -> str:
        """Create the approval of a PAUSED execution (idempotent per execution); returns its id.

        The embedded engine does this itself when it pauses; the Kestra backend calls this for a
        PAUSED execution it finds. ``requested_by`` is stored in canonical form and the number of
        approvers comes from the actions' risk (see :meth:`Store.approvals.request_in`)."""
        with self.store.db.write() as conn:
            approval_id, _ = self.store.approvals.request_in(
                conn,
                execution_id=execution_id,
                plan=plan,
                decision=decision,
                requested_by=requested_by,
                service=service,
                deployment_id=deployment_id,
                timeout_minutes=self.settings.approval_timeout_minutes,
                requested_by_source=requested_by_source,
                critical_approvers=self.settings.critical_approvers,
            )
        return approval_id

    # -- voting -------------------------------------------------------------------------------------

    def vote(
        self,
        approval_id: str,
        identity: Identity,
        approved: bool,
        comment: str = "",
        rollback_to: str | None = None,
    ) -> VoteResult:
        """One vote. ``rollback_to``: another known-good version the approver picks for the plan's
        rollback (checked against the revision history here; audited)."""
        comment = (comment or "").strip()
        approved = approved is True
        verb = "approve" if approved else "reject"
        claimed = identity
        target: revisions.Target | None = None
        try:
            identity = self.checked_identity(identity)
            require_approver(identity)
            if len(comment) > MAX_COMMENT:
                raise ValueError(
                    f"the comment is too long ({len(comment)} characters; at most {MAX_COMMENT})"
                )
            if approved:
                target = self._before_approving(approval_id, identity, rollback_to)
            outcome = self._record_vote(approval_id, identity, approved, comment)
        except (PermissionDenied, AlreadyDecided, ApprovalNotFound, ValueError, NoRollbackTarget) as exc:
            actor, detail = _audit_actor(claimed)
            self.store.audit.record(
                actor,
                "approval.refused",
                approval_id,
                {"attempt": verb, "role": _role_text(claimed), "reason": str(exc), **detail},
            )
            raise
        status, approval, expired_now = outcome
        if expired_now:
            self._resume(approval, approved=False, comment=self._timeout_comment(), approver=TIMEOUT_ACTOR)
            message = already_message(approval)
            self.store.audit.record(
                identity.name, "approval.refused", approval_id, {"attempt": verb, "reason": message}
            )
            raise AlreadyDecided(message)
        if status == "recorded":
            votes = self.store.approvals.votes(approval_id)
            missing = approval["required_approvals"] - sum(1 for v in votes if v["approved"])
            return VoteResult(
                "recorded", f"approval recorded; {missing} more approver(s) needed from someone else"
            )
        approvers = ", ".join(v["actor"] for v in self.store.approvals.votes(approval_id) if v["approved"])
        chosen = target.to_dict() if target is not None and target.version else None
        if chosen is not None and status == "approved":
            self.store.audit.record(identity.name, "approval.rollback_target", approval_id, chosen)
        resumed, error = self._resume(
            approval,
            approved=status == "approved",
            comment=comment,
            approver=approvers or identity.name,
            rollback_target=chosen if status == "approved" else None,
        )
        message = f"{status} by {identity.name}"
        if not resumed:
            message += (
                f"; the decision is saved but the engine could not be resumed ({error}); retry it later"
            )
        return VoteResult(status, message, resumed=resumed)  # type: ignore[arg-type]

    # -- the world as it is now (see the module docstring) --------------------------------------------

    def _live_deployment(self, approval: dict[str, Any]) -> dict[str, Any] | None:
        """The approval's deployment when its run acts on a real service (None for a scenario, a
        snapshot given as evidence, or a service without a real executor)."""
        row = self.store.deployments.for_execution(str(approval.get("execution_id") or ""))
        if not row or row.get("source") in ("scenario", "snapshot") or row.get("scenario"):
            return None
        deployment = {
            "id": row.get("ref") or None,
            "service": row.get("service"),
            "version": row.get("version"),
            "previous_version": row.get("previous_version"),
            "deployed_at": row.get("deployed_at"),
        }
        return deployment if acts_for_real(deployment, self.settings) else None

    def check_now(self, approval: dict[str, Any]) -> acting.Check | None:
        """What the approval's service runs now and whether its decision still applies (None when
        the run acts on nothing real, or nothing it would do changes the service)."""
        deployment = self._live_deployment(approval)
        if deployment is None:
            return None
        executor, _ = executor_for(deployment, None, self.settings, live=True)
        if executor is None:
            return None
        return acting.check_now(executor, deployment, busy_reads=1)

    def rollback_choice(
        self, approval: dict[str, Any], chosen: str | None = None, by: str | None = None
    ) -> revisions.Target | None:
        """Where the approval's rollback would go (the revision history's newest known-good version
        other than the one under judgement, or ``chosen``: TargetRefused unless it is known-good);
        None when it has no rollback or acts on nothing real."""
        if not any(isinstance(a, dict) and a.get("name") == ROLLBACK for a in approval.get("actions") or []):
            return None
        deployment = self._live_deployment(approval)
        if deployment is None:
            return None
        history = revisions.revisions(self.store.revisions.events(str(deployment["service"])))
        return revisions.rollback_target(
            history,
            str(deployment["version"]),
            hint=deployment.get("previous_version"),
            chosen=chosen or None,
            chosen_by=by if chosen else None,
        )

    def _before_approving(
        self, approval_id: str, identity: Identity, rollback_to: str | None
    ) -> revisions.Target | None:
        """Right before an approval counts: close it as superseded when the service moved on
        (:class:`Superseded`), refuse it without a known-good rollback target
        (:class:`NoRollbackTarget`), else the target it approves."""
        approval = self.store.approvals.get(approval_id)
        if approval is None or approval["status"] != "pending":
            return None  # the vote says why (not found, already decided)
        check = self.check_now(approval)
        if check is not None and check.superseded:
            self.supersede(approval, check.superseded)
            raise Superseded(already_message(self.store.approvals.get(approval_id) or approval))
        target = self.rollback_choice(approval, rollback_to, identity.name)
        if target is not None and target.version is None:
            raise NoRollbackTarget(
                f"{target.reason}; reject it (the deployment is escalated) or mark a version known-good "
                "on the Deployments page"
            )
        return target

    def supersede(self, approval: dict[str, Any], reason: str) -> bool:
        """Close a pending approval as superseded (the service moved past its decision) and resume its
        run so that nothing runs. False when it was not pending any more."""
        now = self._now_text()
        with self.store.db.write() as conn:
            closed = self.store.approvals.close_in(
                conn,
                approval["id"],
                status="superseded",
                decided_by=SUPERSEDED_ACTOR,
                comment=f"superseded: {reason}",
                at=now,
            )
            if closed:
                self.store.audit.record_in(
                    conn,
                    SUPERSEDED_ACTOR,
                    "approval.superseded",
                    approval["id"],
                    {"execution_id": approval["execution_id"], "reason": reason, "at": now},
                )
        if closed:
            self._resume(approval, approved=False, comment=f"superseded: {reason}", approver=SUPERSEDED_ACTOR)
        return closed

    def starters(self, execution_id: str) -> list[dict[str, Any]]:
        """Who started the run (requester, deployer, launcher): see :meth:`Store.launches.starters`."""
        return self.store.launches.starters(execution_id)

    def vote_refusal(
        self,
        approval: dict[str, Any],
        identity: Identity | None,
        approved: bool,
        starters: list[dict[str, Any]] | None = None,
    ) -> str | None:
        """Why ``identity`` could not cast this vote on ``approval`` (a row with its ``votes``) under
        the starters' rule, or None. For a page to explain a disabled button before the click;
        :meth:`decide` checks again in its transaction."""
        if identity is None:
            return None
        if starters is None:
            starters = self.starters(approval["execution_id"])
        return starter_refusal(
            identity.name,
            approved,
            starters,
            approval.get("votes") or [],
            int(approval.get("required_approvals") or 1),
        )

    def checked_identity(self, identity: Identity) -> Identity:
        """``identity`` with its name in canonical form, if it may decide at all here: not while
        the sign-in configuration is broken, not a picked demo identity where demo identity is
        off, not an invalid or reserved name. Raises :class:`PermissionDenied` or
        :class:`InvalidIdentity` (one line each)."""
        policy = sign_in(self.settings)
        if policy.broken:
            raise PermissionDenied(policy.error_line())
        if not verified(identity) and not policy.demo_allowed:
            what = "a picked demo identity" if identity.source == "demo" else "a name no credential proved"
            raise PermissionDenied(
                f"{what} cannot decide here ("
                + (policy.error_line() or "this console uses a configured sign-in")
                + ")"
            )
        name = validate_name(identity.name)
        return identity if name == identity.name else replace(identity, name=name)

    def _record_vote(
        self, approval_id: str, identity: Identity, approved: bool, comment: str
    ) -> tuple[str, dict[str, Any], bool]:
        """Record one vote in one transaction. Returns (status, approval row, expired_now)."""
        now = self._now_text()
        with self.store.db.write() as conn:
            approval = self.store.approvals.get(approval_id, conn)
            if approval is None:
                raise ApprovalNotFound(f"approval {approval_id} not found")
            if approval["status"] != "pending":
                raise AlreadyDecided(already_message(approval))
            if parse_time(approval["expires_at"]) <= self.clock():
                self._expire_in(conn, approval, now)
                return "expired", self.store.approvals.get(approval_id, conn) or approval, True
            # canonical names compare case-insensitively: "Alice" and "alice " are one person
            if same_person(identity.name, requester_name(approval["requested_by"])):
                raise PermissionDenied("you cannot approve your own request")
            if not approved and not comment:
                raise ValueError("a rejection needs a comment saying why")
            voted = self.store.approvals.vote_in(conn, approval_id, identity.name)
            if voted is not None:
                raise AlreadyDecided(
                    f"{identity.name} already voted on this at {_hhmm(voted['at'])}; "
                    "a second approval must come from someone else"
                )
            refusal = starter_refusal(
                identity.name,
                approved,
                self.store.launches.starters(approval["execution_id"], conn),
                self.store.approvals.votes(approval_id, conn),
                int(approval["required_approvals"] or 1),
            )
            if refusal is not None:
                raise PermissionDenied(refusal)
            if not self.store.approvals.add_vote_in(conn, approval_id, identity.name, approved, comment, now):
                raise AlreadyDecided(f"{identity.name} already voted on this")
            if approved:
                count = len(self.store.approvals.voters_in(conn, approval_id, approved=True))
                status = "approved" if count >= approval["required_approvals"] else "recorded"
            else:
                status = "rejected"
            if status != "recorded":
                approvers = self.store.approvals.voters_in(conn, approval_id, approved=approved)
                closed = self.store.approvals.close_in(
                    conn,
                    approval_id,
                    status=status,
                    decided_by=", ".join(approvers) if approved else identity.name,
                    comment=comment,
                    at=now,
                )
                if not closed:  # cannot happen under BEGIN IMMEDIATE; kept as the last line of defence
                    raise AlreadyDecided(
                        already_message(self.store.approvals.get(approval_id, conn) or approval)
                    )
            self.store.audit.record_in(
                conn,
                identity.name,
                f"approval.{status if status != 'recorded' else 'vote'}",
                approval_id,
                {
                    "approved": approved,
                    "comment": comment,
                    "role": identity.role.value,
                    "execution_id": approval["execution_id"],
                    "required_approvals": approval["required_approvals"],
                },
            )
            final = self.store.approvals.get(approval_id, conn) or approval
        return status, final, False

    def _timeout_comment(self) -> str:
        minutes = self.settings.approval_timeout_minutes
        return f"expired: nobody decided within {minutes:g} minutes"

    def _expire_in(self, conn: Connection, approval: dict[str, Any], now: str) -> bool:
        changed = self.store.approvals.close_in(
            conn,
            approval["id"],
            status="expired",
            decided_by=TIMEOUT_ACTOR,
            comment=self._timeout_comment(),
            at=now,
        )
        if changed:
            self.store.audit.record_in(
                conn,
                TIMEOUT_ACTOR,
                "approval.expired",
                approval["id"],
                {"execution_id": approval["execution_id"], "expires_at": approval["expires_at"]},
            )
        return changed

    def expire_overdue(self, now: datetime | None = None) -> list[str]:
        """Reject every pending approval past its deadline and resume its execution with approved=False."""
        now = now or self.clock()
        expired: list[dict[str, Any]] = []
        ids = self.store.approvals.overdue_ids(now)
        if not ids:
            return []
        stamp = format_time(now)
        with self.store.db.write() as conn:
            for approval_id in ids:
                approval = self.store.approvals.get(approval_id, conn)
                if approval is not None and self._expire_in(conn, approval, stamp):
                    expired.append(approval)
        for approval in expired:
            self._resume(approval, approved=False, comment=self._timeout_comment(), approver=TIMEOUT_ACTOR)
        return [a["id"] for a in expired]

    def maybe_expire(self) -> None:
        """:meth:`expire_overdue` at most every few seconds: cheap enough to run before every read
        of an engine's executions (the composition root hooks it there)."""
        now = time.monotonic()
        if now - self._last_expiry < self._expire_every_s or not self._expiry_lock.acquire(blocking=False):
            return
        try:
            self._last_expiry = now
            if self.store.approvals.overdue_ids(self.clock()):
                self.expire_overdue()
        except Exception:
            log.warning("approval expiry failed", exc_info=True)
        finally:
            self._expiry_lock.release()

    def start_expiry_timer(self, interval_s: float) -> None:
        """Expire overdue approvals every ``interval_s`` seconds even when no page is open."""
        if self._timer is not None:
            return
        self._timer = threading.Thread(
            target=self._expiry_loop, args=(interval_s,), name="approval-expiry", daemon=True
        )
        self._timer.start()

    def _expiry_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.maybe_expire()

    def stop(self) -> None:
        """Stop the expiry timer (if it runs)."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout=5)
            self._timer = None

    def recover(self) -> list[dict[str, Any]]:
        """At start, after the engine's own recovery: expire what fell due while the console was
        down, then apply the decisions that were committed but never reached the engine (the
        process died in between, or the resume failed). Returns what was done."""
        try:
            expired = self.expire_overdue()
        except Exception:
            log.warning("approval expiry failed during recovery", exc_info=True)
            expired = []
        report: list[dict[str, Any]] = [{"approval_id": a, "action": "expired (rejected)"} for a in expired]
        for approval_id in self.store.approvals.unresumed_decision_ids():
            try:
                result = self.retry_resume(approval_id)
            except Exception as exc:
                text = " ".join(str(exc).split()) or type(exc).__name__
                if not isinstance(exc, BackendError | ValueError):
                    text = f"{type(exc).__name__}: {text}"
                report.append({"approval_id": approval_id, "action": f"resume failed: {text[:500]}"})
                continue
            report.append(
                {
                    "approval_id": approval_id,
                    "action": "decision applied" if result.resumed else result.message,
                }
            )
        return report

    # -- resuming the engine --------------------------------------------------------------------------

    def _resume(
        self,
        approval: dict[str, Any],
        *,
        approved: bool,
        comment: str,
        approver: str,
        rollback_target: dict[str, Any] | None = None,
    ) -> tuple[bool, str]:
        try:
            self.backend.resume(
                approval["execution_id"],
                approved=approved,
                comment=comment,
                approver=approver,
                rollback_target=rollback_target,
            )
        except Exception as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if isinstance(exc, BackendError) and "not PAUSED" in message:
                # the engine already moved on (resumed elsewhere, killed): nothing left to do
                self._set_resume_state(approval["id"], "done", message)
                return True, ""
            log.warning("resume of %s failed: %s", approval["execution_id"], message)
            self._set_resume_state(approval["id"], "failed", message)
            self.store.audit.record(
                "system", "approval.resume_failed", approval["id"], {"error": message, "approver": approver}
            )
            return False, message
        self._set_resume_state(approval["id"], "done", None)
        return True, ""

    def _set_resume_state(self, approval_id: str, state: str, error: str | None) -> None:
        self.store.approvals.set_resume_state(approval_id, state, error)

    def resume_failed(self) -> list[dict[str, Any]]:
        return [self.get(approval_id) for approval_id in self.store.approvals.resume_failed_ids()]

    def retry_resume(self, approval_id: str) -> VoteResult:
        """Resume the engine again for a decision whose resume failed."""
        approval = self.get(approval_id)
        if approval["status"] not in ("approved", "rejected", "expired", "superseded"):
            raise ApprovalError(f"approval {approval_id} is {approval['status']}; nothing to resume")
        if approval.get("resume_state") == "done":
            return VoteResult(_result_status(approval), "already resumed", resumed=True)
        target = None
        if approval["status"] == "expired":
            approved, comment, approver = (
                False,
                approval.get("comment") or self._timeout_comment(),
                TIMEOUT_ACTOR,
            )
        elif approval["status"] == "superseded":
            approved, comment, approver = False, approval.get("comment") or "superseded", SUPERSEDED_ACTOR
        else:
            approved = approval["status"] == "approved"
            comment = approval.get("comment") or ""
            approver = approval.get("decided_by") or "unknown"
            found = self.rollback_choice(approval) if approved else None
            target = found.to_dict() if found is not None and found.version else None
        resumed, error = self._resume(
            approval, approved=approved, comment=comment, approver=approver, rollback_target=target
        )
        self.store.audit.record(
            "system", "approval.resume_retried", approval_id, {"ok": resumed, "error": error or None}
        )
        if not resumed:
            return VoteResult(_result_status(approval), f"the engine still cannot be resumed ({error})")
        return VoteResult(_result_status(approval), "engine resumed", resumed=True)


_ROLE_WORDS = {
    "requester": "requested this approval",
    "deployer": "deployed this version",
    "launcher": "launched this run",
}


def starter_of(name: str, starters: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The entry of ``name`` among the run's starters (see :meth:`Store.launches.starters`), or None."""
    return next((p for p in starters if same_person(name, str(p.get("name") or ""))), None)


def started_text(person: dict[str, Any]) -> str:
    """``deployed this version and launched this run``: what a starter did, in words."""
    words = [_ROLE_WORDS.get(role, role) for role in person.get("roles") or []]
    return " and ".join(words) or "started this run"


def starter_refusal(
    name: str,
    approved: bool,
    starters: list[dict[str, Any]],
    votes: list[dict[str, Any]],
    required: int,
) -> str | None:
    """Why ``name`` may not cast this vote under the starters' rule (module docstring), or None.

    ``starters`` are the run's requester, deployer and launcher; ``votes`` the votes so far;
    ``required`` how many approvals the action needs."""
    me = starter_of(name, starters)
    if me is None:
        return None
    if "requester" in (me.get("roles") or []):
        return "you cannot approve your own request"
    did = started_text(me)
    if not approved:
        return (
            f"you {did}: a rejection decides on its own, so it must come from someone who did not "
            "start the run"
        )
    if required <= 1:
        return f"you {did}: this action needs one approver, who must be someone who did not start the run"
    for vote in votes:
        other = starter_of(str(vote.get("actor") or ""), starters)
        if vote.get("approved") and other is not None and not same_person(name, str(vote.get("actor"))):
            return (
                f"you {did} and {vote.get('actor')}, who also started it, already approved: the other "
                "approvals must come from people who did not start the run"
            )
    return None


def _role_text(identity: Identity) -> str:
    role = getattr(identity, "role", None)
    return str(getattr(role, "value", role))


def _audit_actor(claimed: Identity) -> tuple[str, dict[str, Any]]:
    """Who the audit trail names for a refused attempt: the canonical name when it is valid;
    otherwise never the claimed text itself (it may be ``system:timeout`` or carry control
    characters) but a marker, with the claim (cleaned) beside it."""
    try:
        return validate_name(claimed.name), {}
    except InvalidIdentity:
        return "(invalid name)", {"claimed_name": requester_name(claimed.name, fallback="")[:100]}


def _result_status(approval: dict[str, Any]) -> Literal["approved", "rejected", "recorded"]:
    return "approved" if approval["status"] == "approved" else "rejected"


__all__ = [
    "AlreadyDecided",
    "ApprovalError",
    "ApprovalNotFound",
    "ApprovalService",
    "NoRollbackTarget",
    "Superseded",
    "VoteResult",
    "already_message",
    "starter_refusal",
]
