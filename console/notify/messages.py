"""What a notification about an approval (or an escalation) says, for Slack and for a generic JSON webhook.

One audit row (``approval.requested``, ``.vote``, ``.approved``, ``.rejected``, ``.expired``,
``.cancelled``, ``.superseded``: closed unrun because the service moved past it;
``deployment.escalated``: a run that could not decide, the telemetry lost or the store refusing
writes) and what the store knows of its approval become a :class:`Notice`: a title, a few
sentences, labelled fields, the deep link to the approval card and the structured facts. The Notice
is then rendered for each channel: :func:`slack_payload` (``text`` plus simple ``blocks``, every
piece of untrusted text escaped so a comment or an action name cannot make a link or a mention) and
:func:`webhook_payload` (JSON).

Nothing secret goes in: every free text (comments, names, versions, the summary) passes through
:func:`~console.domain.redaction.redact` with the settings' secret values, and the only URL a message
carries is the deep link built from ``CONSOLE_PUBLIC_URL`` (checked to hold no credentials).
Pure functions: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from console.domain.models import parse_time
from console.domain.redaction import redact
from console.domain.text import one_line
from console.settings import Settings

SOURCE = "devops-loop-console"

KINDS: dict[str, str] = {
    "approval.requested": "pending",
    "approval.vote": "vote",
    "approval.approved": "approved",
    "approval.rejected": "rejected",
    "approval.expired": "expired",
    "approval.cancelled": "cancelled",
    "approval.superseded": "superseded",
    "deployment.escalated": "escalated",
}
"""The audit events a notification follows, and the kind of message each one makes."""

MAX_TEXT = 280
"""Free text (a comment, the summary) is cut to this many characters in a message."""

_SLACK_ICONS = {
    "pending": ":hourglass_flowing_sand:",
    "vote": ":ballot_box_with_check:",
    "approved": ":white_check_mark:",
    "rejected": ":x:",
    "expired": ":alarm_clock:",
    "cancelled": ":no_entry_sign:",
    "superseded": ":fast_forward:",
    "escalated": ":rotating_light:",
}
SLACK_SECTION_LIMIT = 3000
SLACK_FIELD_LIMIT = 2000
SLACK_MAX_FIELDS = 10


@dataclass(frozen=True)
class Notice:
    """One message, before it is rendered for a channel (all text plain, unescaped, redacted)."""

    event: str
    kind: str
    at: str
    title: str
    lines: list[str] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)
    link: str | None = None
    simulated: bool = False
    data: dict[str, Any] = field(default_factory=dict)


# -- text helpers -----------------------------------------------------------------------------------------


def _clean(value: Any, secrets: list[str], limit: int = MAX_TEXT) -> str:
    """One line of redacted text without bidi or zero-width controls, at most ``limit`` characters."""
    return one_line(redact("" if value is None else str(value), secrets), limit)


def _when(text: Any) -> str:
    """``2026-11-29 17:56 UTC`` for a stored timestamp ("?" when there is none)."""
    if not text:
        return "?"
    try:
        moment = text if isinstance(text, datetime) else parse_time(str(text))
    except ValueError:
        return "?"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def approval_link(settings: Settings, approval_id: str) -> str | None:
    """The deep link to an approval's card, or None when ``CONSOLE_PUBLIC_URL`` is not set."""
    base = settings.public_url.strip().rstrip("/")
    if not base:
        return None
    return f"{base}/approvals?approval={quote(str(approval_id), safe='')}"


def slack_escape(text: str) -> str:
    """Slack's own escaping of ``&``, ``<`` and ``>``: what follows cannot open a link, a mention
    (``<!channel>``, ``<@U123>``) or a date token."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- the notice -----------------------------------------------------------------------------------------


def _actions_text(actions: list[dict[str, Any]], secrets: list[str]) -> str:
    names = [
        f"{_clean(a.get('name'), secrets, 60)} ({_clean(a.get('risk'), secrets, 12)})"
        for a in actions
        if isinstance(a, dict)
    ]
    return ", ".join(names) or "no action"


def _confidence(value: Any) -> str:
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return "?"


def escalation_notice(row: dict[str, Any], settings: Settings) -> Notice:
    """The message of a run that escalated without a decision (``deployment.escalated``: its
    detail names the service, the version and the reason)."""
    secrets = settings.secret_values()
    detail = row.get("detail") if isinstance(row.get("detail"), dict) else {}
    service = _clean(detail.get("service") or "unknown service", secrets, 80)
    version = _clean(detail.get("version") or "?", secrets, 60)
    reason = _clean(detail.get("reason") or "no reason recorded", secrets)
    execution_id = _clean(row.get("subject"), secrets, 80)
    at = str(row.get("at") or "")
    return Notice(
        event=str(row.get("event")),
        kind="escalated",
        at=at,
        title=f"Escalated: {service} {version} needs a person",
        lines=[reason, "The loop could not decide on its own: check the deployment by hand."],
        fields=[("Service", service), ("Version", version), ("Run", execution_id), ("At", _when(at))],
        data={
            "escalation": {
                "execution_id": execution_id or None,
                "service": service,
                "version": version,
                "reason": reason,
                "at": at,
            }
        },
    )


@dataclass(frozen=True)
class _Facts:
    """What a message about one audit row may say, each text already cleaned and redacted."""

    event: str
    kind: str
    at: str
    approval: dict[str, Any]
    approval_id: str
    execution_id: Any
    votes: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    service: str
    version: str
    previous: str
    environment: str
    verdict: str
    scenario: str
    actions_text: str
    actor: str
    decider: str | None
    comment: str
    reason: str
    required: int
    secrets: list[str]

    @property
    def what(self) -> str:
        return f"{self.verdict} {self.service} {self.version}"

    def clean(self, value: Any, limit: int = MAX_TEXT) -> str:
        return _clean(value, self.secrets, limit)


def _deployment_texts(
    deployment: dict[str, Any], approval: dict[str, Any], secrets: list[str]
) -> dict[str, str]:
    """The deployment's words in a message: service, versions, environment, verdict, scenario."""
    service = deployment.get("service") or approval.get("service") or "unknown service"
    return {
        "service": _clean(service, secrets, 80),
        "version": _clean(deployment.get("version") or "?", secrets, 60),
        "previous": _clean(deployment.get("previous_version"), secrets, 60),
        "environment": _clean(deployment.get("environment"), secrets, 60),
        "verdict": _clean(approval.get("verdict") or "?", secrets, 20),
        "scenario": _clean(deployment.get("scenario"), secrets, 80),
    }


def _votes_until(material: dict[str, Any] | None, at: str) -> list[dict[str, Any]]:
    """The votes cast up to an event (the approval may be read after later votes)."""
    return [v for v in (material or {}).get("votes") or [] if str(v.get("at") or "") <= at]


def _required(approval: dict[str, Any], detail: dict[str, Any]) -> int:
    return int(approval.get("required_approvals") or detail.get("required_approvals") or 1)


def _facts(row: dict[str, Any], material: dict[str, Any] | None, settings: Settings) -> _Facts:
    secrets = settings.secret_values()
    kind = KINDS.get(str(row.get("event")), "other")
    detail = row.get("detail") if isinstance(row.get("detail"), dict) else {}
    approval = dict((material or {}).get("approval") or {})
    at = str(row.get("at") or "")
    votes = _votes_until(material, at)
    actions = [a for a in approval.get("actions") or [] if isinstance(a, dict)]
    actor = _clean(row.get("actor") or "unknown", secrets, 80)
    deciders = {"approved": _clean(approval.get("decided_by") or actor, secrets, 120), "rejected": actor}
    return _Facts(
        event=str(row.get("event")),
        kind=kind,
        at=at,
        approval=approval,
        approval_id=str(approval.get("id") or row.get("subject") or "?"),
        execution_id=approval.get("execution_id") or detail.get("execution_id"),
        votes=votes,
        actions=actions,
        **_deployment_texts(dict((material or {}).get("deployment") or {}), approval, secrets),
        actions_text=_actions_text(actions, secrets),
        actor=actor,
        decider=deciders.get(kind, actor if kind in ("expired", "superseded") else None),
        comment=_clean(detail.get("comment") or "", secrets),
        reason=_clean(detail.get("reason") or "", secrets),
        required=_required(approval, detail),
        secrets=secrets,
    )


_Wording = tuple[str, list[str], list[tuple[str, str]]]
"""A kind's title, its sentences and the fields it adds."""


def _pending(f: _Facts) -> _Wording:
    expires = _when(f.approval.get("expires_at"))
    summary = f.clean((f.approval.get("decision") or {}).get("summary"))
    lines = [summary] if summary else []
    lines.append(f"Approve runs {f.actions_text}. Reject, or no decision by {expires}, runs nothing risky.")
    fields = [
        ("Expires", expires),
        ("Approvers needed", str(f.required)),
        ("Requested by", f.clean(f.approval.get("requested_by") or "unknown", 80)),
    ]
    return f"Approval needed: {f.what}", lines, fields


def _vote(f: _Facts) -> _Wording:
    approving = [v for v in f.votes if v.get("approved")]
    missing = max(f.required - len(approving), 0)
    lines = [f"{missing} more approver(s) needed before {_when(f.approval.get('expires_at'))}."]
    if f.comment:
        lines.append(f"Comment: {f.comment}")
    return f"{f.actor} approved {f.what} ({len(approving)} of {f.required})", lines, []


def _approved(f: _Facts) -> _Wording:
    ran = f"{f.actions_text} now run" + (" (simulated: recorded scenario)." if f.scenario else ".")
    lines = [ran, f"Comment: {f.comment}" if f.comment else "No comment."]
    return f"Approved by {f.decider}: {f.what}", lines, [("Decided", f"{f.decider} at {_when(f.at)}")]


def _rejected(f: _Facts) -> _Wording:
    lines = [
        f"Nothing risky runs: {f.actions_text} skipped.",
        f"Comment: {f.comment}" if f.comment else "No comment.",
    ]
    return f"Rejected by {f.decider}: {f.what}", lines, [("Decided", f"{f.decider} at {_when(f.at)}")]


def _expired(f: _Facts) -> _Wording:
    lines = [f"Rejected automatically at {_when(f.at)}: {f.actions_text} did not run."]
    return (
        f"Expired: nobody decided on {f.what}",
        lines,
        [("Expired", _when(f.approval.get("expires_at") or f.at))],
    )


def _cancelled(f: _Facts) -> _Wording:
    lines = ["The execution stopped before a decision: nothing runs."]
    return f"Cancelled: {f.what}", lines, [("Cancelled", _when(f.at))]


def _superseded(f: _Facts) -> _Wording:
    why = f.reason or "the service moved past the decision"
    lines = [f"Closed without running: {why}.", f"{f.actions_text} did not run; no vote is needed any more."]
    return f"Superseded: {f.what}", lines, [("Superseded", _when(f.at))]


def _other(f: _Facts) -> _Wording:
    return f"{f.clean(f.event, 60)}: {f.what}", [], []


WORDING: dict[str, Any] = {
    "pending": _pending,
    "vote": _vote,
    "approved": _approved,
    "rejected": _rejected,
    "expired": _expired,
    "cancelled": _cancelled,
    "superseded": _superseded,
}
"""Each kind of message (:data:`KINDS`) and the function that words it; any other event is worded
by its name."""


def _common_fields(f: _Facts) -> list[tuple[str, str]]:
    confidence = f"confidence {_confidence(f.approval.get('confidence'))}"
    return [
        ("Service", f.service + (f" ({f.environment})" if f.environment else "")),
        ("Version", f.version + (f" (previous {f.previous})" if f.previous else "")),
        ("Verdict", f"{f.verdict} · {f.clean(f.approval.get('severity') or '?', 20)} · {confidence}"),
        ("Risk", f.clean(f.approval.get("risk") or "?", 20)),
        ("Actions", f.actions_text),
    ]


def _data(f: _Facts) -> dict[str, Any]:
    """The structured facts a generic webhook receives beside the text."""
    approval = f.approval
    decided = f.kind in ("approved", "rejected", "expired", "cancelled", "superseded")
    votes = [
        {
            "actor": f.clean(v.get("actor"), 80),
            "approved": bool(v.get("approved")),
            "comment": f.clean(v.get("comment")) or None,
            "at": v.get("at"),
        }
        for v in f.votes
    ]
    return {
        "approval": {
            "id": f.approval_id,
            "status": "pending" if f.kind in ("pending", "vote") else f.kind,
            "execution_id": f.execution_id,
            "service": f.service,
            "verdict": approval.get("verdict"),
            "severity": approval.get("severity"),
            "confidence": approval.get("confidence"),
            "risk": approval.get("risk"),
            "actions": [{"name": f.clean(a.get("name"), 60), "risk": a.get("risk")} for a in f.actions],
            "required_approvals": f.required,
            "requested_by": f.clean(approval.get("requested_by"), 80) or None,
            "requested_at": approval.get("requested_at"),
            "expires_at": approval.get("expires_at"),
            "decided_by": f.decider,
            "decided_at": f.at if decided else None,
            "comment": f.comment or None,
            "votes": votes,
        },
        "deployment": {
            "service": f.service,
            "version": f.version,
            "previous_version": f.previous or None,
            "environment": f.environment or None,
            "scenario": f.scenario or None,
        },
    }


def build_notice(row: dict[str, Any], material: dict[str, Any] | None, settings: Settings) -> Notice:
    """The message for one audit row about an approval (``material`` as
    ``Store.notifications.material`` returns it; None when the approval is unknown), or about an
    escalation (:func:`escalation_notice`)."""
    if KINDS.get(str(row.get("event"))) == "escalated":
        return escalation_notice(row, settings)
    facts = _facts(row, material, settings)
    title, lines, extra = WORDING.get(facts.kind, _other)(facts)
    fields = _common_fields(facts) + extra
    if facts.votes and facts.kind in ("approved", "rejected", "vote"):
        fields.append(("Votes", "; ".join(_vote_text(v, facts.secrets) for v in facts.votes)))
    return Notice(
        event=facts.event,
        kind=facts.kind,
        at=facts.at,
        title=title,
        lines=lines,
        fields=fields,
        link=approval_link(settings, facts.approval_id),
        simulated=bool(facts.scenario),
        data=_data(facts),
    )


def _vote_text(vote: dict[str, Any], secrets: list[str]) -> str:
    verb = "approved" if vote.get("approved") else "rejected"
    comment = _clean(vote.get("comment"), secrets, 120)
    return f"{_clean(vote.get('actor'), secrets, 80)} {verb}" + (f" ({comment})" if comment else "")


# -- rendering -----------------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_link(url: str) -> str:
    """``<url|label>`` for a URL that cannot break out of the link syntax; escaped text otherwise."""
    if any(c in url for c in "<>| \t\n"):
        return slack_escape(url)
    return f"<{url.replace('&', '&amp;')}|Open the approval card>"


def slack_payload(notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` (the notification's fallback) and simple ``blocks``."""
    icon = _SLACK_ICONS.get(notice.kind, ":information_source:")
    title = slack_escape(notice.title)
    body = "\n".join(slack_escape(line) for line in notice.lines)
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(f"{icon} *{title}*" + (f"\n{body}" if body else ""), SLACK_SECTION_LIMIT),
            },
        }
    ]
    if notice.fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": _cut(f"*{slack_escape(k)}*\n{slack_escape(v)}", SLACK_FIELD_LIMIT),
                    }
                    for k, v in notice.fields[:SLACK_MAX_FIELDS]
                ],
            }
        )
    context = []
    if notice.link:
        context.append(_slack_link(notice.link))
    if notice.simulated:
        context.append("Simulated: a recorded scenario; nothing runs against a real system.")
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in context]})
    text = f"{title} {_slack_link(notice.link)}" if notice.link else title
    return {"text": _cut(text, SLACK_SECTION_LIMIT), "blocks": blocks}


def webhook_payload(notice: Notice) -> dict[str, Any]:
    """The generic webhook's JSON body."""
    return {
        "source": SOURCE,
        "event": notice.event,
        "kind": notice.kind,
        "at": notice.at,
        "title": notice.title,
        "text": "\n".join(notice.lines),
        "fields": {k: v for k, v in notice.fields},
        "link": notice.link,
        "simulated": notice.simulated,
        **notice.data,
    }


RENDERERS = {"slack": slack_payload, "webhook": webhook_payload}
"""Channel name -> the body it receives."""
