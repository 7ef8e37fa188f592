"""What a notification about an approval (or an escalation) says, for Slack and for a generic JSON webhook.

One audit row (``approval.requested``, ``.vote``, ``.approved``, ``.rejected``, ``.expired``,
``.cancelled``; ``deployment.escalated``: a run that could not decide, the telemetry lost or the
store refusing writes) and what the store knows of its approval become a :class:`Notice`: a title, a few
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
from console.settings import Settings

SOURCE = "devops-loop-console"

KINDS: dict[str, str] = {
    "approval.requested": "pending",
    "approval.vote": "vote",
    "approval.approved": "approved",
    "approval.rejected": "rejected",
    "approval.expired": "expired",
    "approval.cancelled": "cancelled",
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
    """One line of redacted text, at most ``limit`` characters."""
    text = " ".join(redact("" if value is None else str(value), secrets).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def build_notice(row: dict[str, Any], material: dict[str, Any] | None, settings: Settings) -> Notice:
    """The message for one audit row about an approval (``material`` as
    ``Store.notification_material`` returns it; None when the approval is unknown), or about an
    escalation (:func:`escalation_notice`)."""
    secrets = settings.secret_values()
    event = str(row.get("event"))
    kind = KINDS.get(event, "other")
    if kind == "escalated":
        return escalation_notice(row, settings)
    detail = row.get("detail") if isinstance(row.get("detail"), dict) else {}
    approval = dict((material or {}).get("approval") or {})
    deployment = dict((material or {}).get("deployment") or {})
    at = str(row.get("at") or "")
    # the votes cast up to this event (the approval may be read after later votes)
    votes = [v for v in (material or {}).get("votes") or [] if str(v.get("at") or "") <= at]
    approval_id = str(approval.get("id") or row.get("subject") or "?")
    actions = [a for a in approval.get("actions") or [] if isinstance(a, dict)]

    service = _clean(deployment.get("service") or approval.get("service") or "unknown service", secrets, 80)
    version = _clean(deployment.get("version") or "?", secrets, 60)
    previous = _clean(deployment.get("previous_version"), secrets, 60)
    environment = _clean(deployment.get("environment"), secrets, 60)
    verdict = _clean(approval.get("verdict") or "?", secrets, 20)
    scenario = _clean(deployment.get("scenario"), secrets, 80)
    simulated = bool(scenario)
    what = f"{verdict} {service} {version}"
    actions_text = _actions_text(actions, secrets)
    actor = _clean(row.get("actor") or "unknown", secrets, 80)
    decider = {
        "approved": _clean(approval.get("decided_by") or actor, secrets, 120),
        "rejected": actor,
        "expired": actor,
    }.get(kind)
    comment = _clean(detail.get("comment") or "", secrets)
    required = int(approval.get("required_approvals") or detail.get("required_approvals") or 1)
    link = approval_link(settings, approval_id)

    fields: list[tuple[str, str]] = [
        ("Service", f"{service}" + (f" ({environment})" if environment else "")),
        ("Version", version + (f" (previous {previous})" if previous else "")),
        (
            "Verdict",
            f"{verdict} · {_clean(approval.get('severity') or '?', secrets, 20)} · "
            f"confidence {_confidence(approval.get('confidence'))}",
        ),
        ("Risk", _clean(approval.get("risk") or "?", secrets, 20)),
        ("Actions", actions_text),
    ]
    lines: list[str] = []
    if kind == "pending":
        title = f"Approval needed: {what}"
        summary = _clean((approval.get("decision") or {}).get("summary"), secrets)
        if summary:
            lines.append(summary)
        lines.append(
            f"Approve runs {actions_text}. Reject, or no decision by {_when(approval.get('expires_at'))}, "
            "runs nothing risky."
        )
        fields += [
            ("Expires", _when(approval.get("expires_at"))),
            ("Approvers needed", str(required)),
            ("Requested by", _clean(approval.get("requested_by") or "unknown", secrets, 80)),
        ]
    elif kind == "vote":
        approving = [v for v in votes if v.get("approved")]
        title = f"{actor} approved {what} ({len(approving)} of {required})"
        missing = max(required - len(approving), 0)
        lines.append(f"{missing} more approver(s) needed before {_when(approval.get('expires_at'))}.")
        if comment:
            lines.append(f"Comment: {comment}")
    elif kind in ("approved", "rejected"):
        title = f"{kind.capitalize()} by {decider}: {what}"
        lines.append(
            f"{actions_text} now run" + (" (simulated: recorded scenario)." if simulated else ".")
            if kind == "approved"
            else f"Nothing risky runs: {actions_text} skipped."
        )
        lines.append(f"Comment: {comment}" if comment else "No comment.")
        fields += [("Decided", f"{decider} at {_when(at)}")]
    elif kind == "expired":
        title = f"Expired: nobody decided on {what}"
        lines.append(f"Rejected automatically at {_when(at)}: {actions_text} did not run.")
        fields += [("Expired", _when(approval.get("expires_at") or at))]
    elif kind == "cancelled":
        title = f"Cancelled: {what}"
        lines.append("The execution stopped before a decision: nothing runs.")
        fields += [("Cancelled", _when(at))]
    else:
        title = f"{_clean(event, secrets, 60)}: {what}"
    if votes and kind in ("approved", "rejected", "vote"):
        fields.append(("Votes", "; ".join(_vote_text(v, secrets) for v in votes)))

    data = {
        "approval": {
            "id": approval_id,
            "status": "pending" if kind in ("pending", "vote") else kind,
            "execution_id": approval.get("execution_id") or detail.get("execution_id"),
            "service": service,
            "verdict": approval.get("verdict"),
            "severity": approval.get("severity"),
            "confidence": approval.get("confidence"),
            "risk": approval.get("risk"),
            "actions": [{"name": _clean(a.get("name"), secrets, 60), "risk": a.get("risk")} for a in actions],
            "required_approvals": required,
            "requested_by": _clean(approval.get("requested_by"), secrets, 80) or None,
            "requested_at": approval.get("requested_at"),
            "expires_at": approval.get("expires_at"),
            "decided_by": decider,
            "decided_at": at if kind in ("approved", "rejected", "expired", "cancelled") else None,
            "comment": comment or None,
            "votes": [
                {
                    "actor": _clean(v.get("actor"), secrets, 80),
                    "approved": bool(v.get("approved")),
                    "comment": _clean(v.get("comment"), secrets) or None,
                    "at": v.get("at"),
                }
                for v in votes
            ],
        },
        "deployment": {
            "service": service,
            "version": version,
            "previous_version": previous or None,
            "environment": environment or None,
            "scenario": scenario or None,
        },
    }
    return Notice(
        event=event,
        kind=kind,
        at=at,
        title=title,
        lines=lines,
        fields=fields,
        link=link,
        simulated=simulated,
        data=data,
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
