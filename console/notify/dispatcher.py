"""The notifications outbox: follow the audit trail, queue one message per event and channel, deliver
them in the background with bounded retries.

Why the audit trail: both engines already write an ``approval.*`` row for every request (the
embedded engine when it pauses, the approval service when it mirrors a Kestra Pause), vote,
decision, expiry and cancellation, in the same transaction as the change itself. Following it
with a persisted cursor means nothing in the loop has to know notifications exist, an event is
never missed (the cursor only moves in the transaction that queues its messages) and never queued
twice (``UNIQUE (audit_seq, channel)``), and a restart carries on where the last run stopped.

Delivery is at least once per message and channel: a message is marked delivered after the
receiver's 2xx, so a process killed between the two sends it again on restart; every message
carries an ``Idempotency-Key`` header (stable across attempts) for receivers that deduplicate.
Retries are bounded (``NOTIFY_MAX_ATTEMPTS``, doubling backoff, ``Retry-After`` honoured) and a
message given up on keeps its one-line reason (``store.notifications.list``).

:class:`Dispatcher` does one round with :meth:`Dispatcher.run_once` (tests, the CLI) or runs rounds
in a daemon thread (:meth:`Dispatcher.start` / :meth:`Dispatcher.stop`, called by the composition
root). The store is any object with the outbox and the audit feed of :class:`OutboxStore` (the
console's ``Store``): this package sits beside the storage layer, not above it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from console.domain.models import parse_time
from console.domain.text import one_line
from console.notify.channels import Attempt, Channel, configured_channels, guard_library_logs, post
from console.notify.messages import KINDS, RENDERERS, build_notice
from console.settings import Settings

log = logging.getLogger(__name__)

FEED = "approvals"
EVENTS: tuple[str, ...] = tuple(KINDS)
BATCH = 50
MAX_EVENT_AGE = timedelta(hours=24)
"""An event older than this when first seen (the console was down for a day) is not announced."""


class Outbox(Protocol):
    """The outbox's part of the store (``store.notifications``, :mod:`console.storage.notifications`)."""

    def cursor(self, feed: str) -> int: ...

    def material(self, approval_id: str) -> dict[str, Any] | None: ...

    def enqueue(
        self, feed: str, *, expected: int, cursor: int, messages: Sequence[dict[str, Any]]
    ) -> bool: ...

    def claim(
        self, *, limit: int = 20, lease_s: float = 60.0, now: datetime | None = None
    ) -> list[dict[str, Any]]: ...

    def settle(
        self,
        notification_id: int,
        *,
        status: str,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None: ...


class AuditFeed(Protocol):
    """The audit trail's part the outbox follows (``store.audit``)."""

    def after(
        self, seq: int, events: Sequence[str], limit: int = 100
    ) -> tuple[list[dict[str, Any]], int]: ...


class OutboxStore(Protocol):
    """What the dispatcher needs of the store (``console.storage.Store`` has all of it)."""

    @property
    def notifications(self) -> Outbox: ...

    @property
    def audit(self) -> AuditFeed: ...


@dataclass
class Round:
    """What one round did."""

    queued: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


Sender = Callable[..., Attempt]


class Dispatcher:
    """Queues and delivers the approval notifications of one store."""

    def __init__(
        self,
        store: OutboxStore,
        settings: Settings,
        *,
        poll_s: float = 1.0,
        backoff_s: float = 2.0,
        max_backoff_s: float = 300.0,
        before_round: Callable[[], None] | None = None,
        sender: Sender = post,
    ) -> None:
        self.store = store
        self.settings = settings
        self.poll_s = poll_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.before_round = before_round
        """Called at the start of each round (the composition root mirrors Kestra's Pauses here)."""
        self._send = sender
        self._channels = configured_channels(settings)
        self._secrets = settings.secret_values()
        guard_library_logs(self._secrets)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._round_lock = threading.Lock()

    @property
    def channels(self) -> list[str]:
        return sorted(self._channels)

    # -- one round --------------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> Round:
        """Queue what the trail added since the cursor, then attempt every message that is due."""
        with self._round_lock:
            result = Round()
            if self.before_round is not None:
                try:
                    self.before_round()
                except Exception as exc:  # the hook's failure must not stop the deliveries
                    log.warning("notifications: before-round hook failed: %s", one_line(exc, 200))
            while True:
                queued, more = self._enqueue(now)
                result.queued += queued
                if not more:
                    break
            self._deliver_due(result, now)
            return result

    def _enqueue(self, now: datetime | None) -> tuple[int, bool]:
        """Queue the messages of the next batch of audit rows. Returns (messages queued, more rows)."""
        if not self._channels:
            return 0, False
        cursor = self.store.notifications.cursor(FEED)
        rows, read_to = self.store.audit.after(cursor, EVENTS, BATCH)
        if read_to <= cursor:
            return 0, False
        oldest = (now or datetime.now(UTC)) - MAX_EVENT_AGE
        messages: list[dict[str, Any]] = []
        for row in rows:
            if _older_than(row.get("at"), oldest):
                log.info("notifications: audit row %s is older than a day, not announced", row["seq"])
                continue
            notice = build_notice(
                row, self.store.notifications.material(str(row.get("subject"))), self.settings
            )
            for name in self._channels:
                messages.append(
                    {
                        "audit_seq": row["seq"],
                        "channel": name,
                        "event": row["event"],
                        "subject": row.get("subject"),
                        "payload": RENDERERS[name](notice),
                    }
                )
        if not self.store.notifications.enqueue(FEED, expected=cursor, cursor=read_to, messages=messages):
            return 0, True  # another dispatcher moved the cursor: read again from where it is now
        return len(messages), len(rows) == BATCH

    def _deliver_due(self, result: Round, now: datetime | None) -> None:
        lease_s = self.settings.notify_timeout_s * 2 + 30
        while not self._stop.is_set():
            claimed = self.store.notifications.claim(limit=10, lease_s=lease_s, now=now)
            if not claimed:
                return
            for item in claimed:
                self._deliver(item, result, now)

    def _deliver(self, item: dict[str, Any], result: Round, now: datetime | None) -> None:
        channel: Channel | None = self._channels.get(item["channel"])
        if channel is None:
            self.store.notifications.settle(
                item["id"], status="failed", error=f"channel {item['channel']} is not configured any more"
            )
            result.failed += 1
            return
        try:
            attempt = self._send(
                channel,
                item["payload"],
                timeout_s=self.settings.notify_timeout_s,
                idempotency_key=f"devops-loop-notify-{item['audit_seq']}-{item['channel']}",
                secrets=self._secrets,
            )
        except Exception as exc:  # a bug in a sender must not kill the dispatcher
            attempt = Attempt(False, False, f"internal error ({type(exc).__name__})")
        attempts = int(item["attempts"])
        where = f"notification {item['id']} ({item['event']} {item.get('subject')}) to {channel.name}"
        if attempt.delivered:
            self.store.notifications.settle(item["id"], status="delivered")
            result.delivered += 1
            log.info("%s delivered (attempt %d)", where, attempts)
            return
        reason = attempt.reason or "not delivered"
        if attempt.retryable and attempts < self.settings.notify_max_attempts:
            wait = min(self.backoff_s * (2 ** (attempts - 1)), self.max_backoff_s)
            if attempt.retry_after_s is not None:
                wait = min(max(wait, attempt.retry_after_s), self.max_backoff_s)
            self.store.notifications.settle(
                item["id"],
                status="pending",
                error=reason,
                next_attempt_at=(now or datetime.now(UTC)) + timedelta(seconds=wait),
            )
            result.retrying += 1
            log.warning("%s: %s; attempt %d, next in %.3g s", where, reason, attempts, wait)
            return
        if attempt.retryable:
            reason = f"gave up after {attempts} attempts: {reason}"
        self.store.notifications.settle(item["id"], status="failed", error=reason[:300])
        result.failed += 1
        log.warning("%s failed: %s", where, reason)

    # -- the background thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Run rounds every ``poll_s`` seconds in a daemon thread (once; later calls do nothing)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="notify-dispatcher", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # e.g. the database busy: try again next round
                log.warning("notifications: round failed: %s", one_line(exc, 200))
            self._stop.wait(self.poll_s)

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop the thread after the delivery in progress (bounded by the HTTP timeout)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.settings.notify_timeout_s + 2 if timeout_s is None else timeout_s)


def _older_than(text: Any, limit: datetime) -> bool:
    try:
        return parse_time(str(text)) < limit
    except ValueError:
        return False
