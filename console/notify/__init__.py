"""Notifications: approval requests and their results posted to a Slack incoming webhook and/or a
generic JSON webhook, from an outbox that follows the audit trail (:mod:`console.notify.dispatcher`).

This package sits beside ``console.storage`` (it takes the store as an argument, see
``OutboxStore``) and imports only ``console.domain`` and ``console.settings``.
"""

from console.notify.channels import Attempt, Channel, configured_channels, post
from console.notify.dispatcher import EVENTS, Dispatcher, OutboxStore, Round
from console.notify.messages import (
    Notice,
    approval_link,
    build_notice,
    slack_escape,
    slack_payload,
    webhook_payload,
)

__all__ = [
    "EVENTS",
    "Attempt",
    "Channel",
    "Dispatcher",
    "Notice",
    "OutboxStore",
    "Round",
    "approval_link",
    "build_notice",
    "configured_channels",
    "post",
    "slack_escape",
    "slack_payload",
    "webhook_payload",
]
