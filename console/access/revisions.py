"""Operator marks on the revision history: who may say a version is known-good or known-bad, checked
here on the server side and audited (``console/loop/revisions.py`` says what a mark does: it is the
newest strong evidence about that version until the loop's own evidence overturns it).

Only approvers and admins may mark (a mark can make a version a rollback target); the name is
validated like a vote's (:meth:`console.access.approvals.ApprovalService.checked_identity`), a mark
needs a reason, and every mark, granted or refused, is in the audit trail."""

from __future__ import annotations

from console.access.approvals import ApprovalService
from console.access.auth import Identity, PermissionDenied, require_approver
from console.domain.models import now_text
from console.domain.names import requester_name
from console.loop import revisions

MAX_REASON = 500


def mark_revision(
    approvals: ApprovalService, identity: Identity, service: str, version: str, good: bool, reason: str
) -> revisions.Revision:
    """Record ``identity``'s mark of ``service`` ``version`` as known-good (``good``) or known-bad;
    the revision as it stands after it. PermissionDenied (role, sign-in) or ValueError (no reason,
    unknown version), one line each; refused attempts are audited too."""
    store = approvals.store
    kind = revisions.MARKED_GOOD if good else revisions.MARKED_BAD
    reason = " ".join((reason or "").split())
    subject = f"{service}@{version}"
    try:
        identity = approvals.checked_identity(identity)
        require_approver(identity)
        if not reason:
            raise ValueError("a mark needs a reason (what was checked, where)")
        if len(reason) > MAX_REASON:
            raise ValueError(f"the reason is too long ({len(reason)} characters; at most {MAX_REASON})")
        known = {r.version for r in revisions.revisions(store.revisions.events(service))}
        if version not in known:
            raise ValueError(f"{version} of {service} was never seen running: nothing to mark")
    except (PermissionDenied, ValueError) as exc:
        actor = requester_name(getattr(identity, "name", ""), fallback="(invalid name)")
        store.audit.record(actor, "revision.mark_refused", subject, {"kind": kind, "reason": str(exc)})
        raise
    at = now_text()
    ev = revisions.event(service, version, kind, at, reason, source="operator", actor=identity.name)
    with store.db.write() as conn:
        store.revisions.add_in(conn, [ev])
        store.audit.record_in(
            conn, identity.name, f"revision.{kind}", subject, {"reason": reason, "role": identity.role.value}
        )
    return next(r for r in revisions.revisions(store.revisions.events(service)) if r.version == version)
