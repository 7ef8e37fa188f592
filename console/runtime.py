"""The composition root: builds the console's parts from the settings and wires them, in one place,
for the command line and the Streamlit side alike (no Streamlit here).

What the wiring adds to the parts on their own (the embedded engine):

- the approval service's throttled expiry runs before the engine's reads of executions, so a page
  never shows an execution waiting for an approval that is already overdue;
- the approval service's expiry timer runs in the background (every ``EXPIRY_TIMER_S``), so an
  approval nobody decides is rejected even when no page is open;
- at start, after the engine took over what a dead process left running, the approval service
  expires what fell due meanwhile and applies the decisions that never reached the engine.

On Kestra the mirror (:mod:`console.engines.kestra.mirror`) copies the executions into the read
model in the background (every ``KESTRA_MIRROR_INTERVAL_S``), paused ones with their approval
request, and whenever the approval service lists pending requests; the flow's Pause has its own
timeout and the approval service expires overdue requests whenever it lists them.

For both engines, when a notification channel is configured (``NOTIFY_SLACK_WEBHOOK_URL`` and/or
``NOTIFY_WEBHOOK_URL``), the notifications dispatcher (:mod:`console.notify`) runs in a background
thread of a long-running console: it follows the audit trail's approval events and posts them, never
in the loop's way. On Kestra its rounds also expire overdue approvals (throttled), so an expiry is
announced with no page open. A synchronous runtime (the CLI) starts no thread: the next
long-running console announces what the CLI's commands wrote (the outbox's cursor is in the
database).

One process serves the pages and the HTTP API (``server.py``): both take the process's one
:class:`Services` from :func:`shared_services`, so a decision through the API and one on the
Approvals page go through the same approval service, store and engine.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from console.access.approvals import ApprovalService, utc_now
from console.access.sessions import Sessions
from console.domain.text import one_line
from console.engines.backend import Backend
from console.engines.embedded.runner import EmbeddedEngine
from console.engines.factory import make_backend
from console.engines.kestra.backend import KestraBackend
from console.engines.kestra.mirror import KestraMirror
from console.inbound import Inbound
from console.loop import narrative
from console.notify import Dispatcher
from console.presentation.health import StoreCondition
from console.settings import Settings, SettingsError, load_settings
from console.storage import Store
from console.storage.database import WAL_MAX_BYTES

log = logging.getLogger(__name__)
T = TypeVar("T")

EXPIRY_TIMER_S = 15.0
"""How often the background timer expires overdue approvals."""
READ_EXPIRY_EVERY_S = 2.0
"""At most this often an engine read expires overdue approvals first."""
NOTIFY_POLL_S = 1.0
"""How often the notifications dispatcher looks at the audit trail and the messages due."""


@dataclass
class Services:
    """The console's parts for the pages. A part that could not start is None and ``error`` says
    why in one line (the pages show it instead of a traceback)."""

    settings: Settings
    store: Store | None
    backend: Backend | None
    approvals: ApprovalService | None
    error: str = ""
    recovery: list[dict[str, Any]] = field(default_factory=list)
    """What start-up recovery did (executions taken over, approvals expired, decisions applied)."""
    notifier: Dispatcher | None = None
    """The notifications dispatcher (None when no channel is configured)."""
    mirror: KestraMirror | None = None
    """On Kestra: what copies its executions into the read model."""
    inbound: Inbound | None = None
    """Announced deployments and alerts started as runs, once each (the API's and the pages')."""
    sessions: Sessions | None = None
    """Password sessions behind the session cookie (the pages' sign-in and ``/auth/session``)."""
    closed: bool = field(default=False, init=False, repr=False)

    def store_condition(self) -> StoreCondition | None:
        """What the health check and the pages' banner judge the store by (None without a store)."""
        store = self.store
        if store is None:
            return None
        fault = store.db.fault()
        try:
            usage = shutil.disk_usage(store.db.path.parent)
            free, total = usage.free, usage.total
        except OSError:
            free = total = None
        retrying = 0
        if isinstance(self.backend, EmbeddedEngine) and self.backend.scheduler is not None:
            retrying = self.backend.scheduler.snapshot().retrying
        return StoreCondition(
            fault_kind=fault.kind if fault else None,
            fault_since=fault.since if fault else None,
            fault_message=fault.message if fault else "",
            free_bytes=free,
            total_bytes=total,
            wal_bytes=store.db.wal_bytes(),
            wal_bound_bytes=WAL_MAX_BYTES,
            retrying_runs=retrying,
        )

    def close(self, wait: bool = True) -> None:
        """Stop the notifications, the mirror, the expiry timer and the engine's workers."""
        self.closed = True
        if self.notifier is not None:
            self.notifier.stop()
        if self.mirror is not None:
            self.mirror.stop()
        if self.approvals is not None:
            self.approvals.stop()
        if self.backend is not None:
            self.backend.close(wait=wait)


@dataclass
class EmbeddedRuntime:
    """The embedded engine and its approval service, wired (the CLI, tests and benchmarks)."""

    settings: Settings
    store: Store
    engine: EmbeddedEngine
    approvals: ApprovalService
    recovery: list[dict[str, Any]] = field(default_factory=list)
    notifier: Dispatcher | None = None
    inbound: Inbound | None = None

    def close(self, wait: bool = True) -> None:
        if self.notifier is not None:
            self.notifier.stop()
        self.approvals.stop()
        self.engine.close(wait=wait)


def wire_embedded(
    engine: EmbeddedEngine,
    approvals: ApprovalService,
    *,
    recover: bool = True,
    expiry_timer_s: float | None = EXPIRY_TIMER_S,
) -> list[dict[str, Any]]:
    """Hook the approval service's expiry into the engine's reads, run its start-up recovery
    (``recover``) and its timer (not for a synchronous engine: nothing runs in the background
    there). Returns the whole start-up recovery report: the engine's, then the approvals'."""
    engine.add_read_hook(approvals.maybe_expire)
    report = list(engine.last_recovery)
    if recover:
        report += approvals.recover()
    if expiry_timer_s and not engine.synchronous:
        approvals.start_expiry_timer(expiry_timer_s)
    return report


def start_notifications(
    settings: Settings,
    store: Store,
    *,
    before_round: Callable[[], None] | None = None,
    poll_s: float = NOTIFY_POLL_S,
) -> Dispatcher | None:
    """The notifications dispatcher on ``store``, running in its thread; None when no channel is
    configured."""
    if not settings.notify_enabled:
        return None
    dispatcher = Dispatcher(store, settings, poll_s=poll_s, before_round=before_round)
    dispatcher.start()
    return dispatcher


def embedded_runtime(
    settings: Settings,
    store: Store | None = None,
    *,
    synchronous: bool = False,
    max_workers: int = 2,
    recover: bool = True,
    expiry_timer_s: float | None = EXPIRY_TIMER_S,
    expire_every_s: float = READ_EXPIRY_EVERY_S,
    notify_poll_s: float = NOTIFY_POLL_S,
    approval_clock: Callable[[], datetime] = utc_now,
) -> EmbeddedRuntime:
    """The embedded engine on ``store`` (or on ``settings.db_path``) with its approval service and,
    unless ``synchronous``, the notifications dispatcher when a channel is configured.
    ``approval_clock`` is the approval service's now (tests move it instead of sleeping)."""
    engine = EmbeddedEngine(
        settings, store, max_workers=max_workers, synchronous=synchronous, recover=recover
    )
    approvals = ApprovalService(
        engine.store,
        engine,
        settings,
        expire_every_s=expire_every_s,
        clock=approval_clock,
    )
    report = wire_embedded(engine, approvals, recover=recover, expiry_timer_s=expiry_timer_s)
    notifier = None if synchronous else start_notifications(settings, engine.store, poll_s=notify_poll_s)
    inbound = Inbound(engine.store, engine, settings, local=engine)
    return EmbeddedRuntime(settings, engine.store, engine, approvals, report, notifier, inbound)


def open_services(settings: Settings | None = None) -> Services:
    """Settings, the store, the engine the settings ask for and the approval service, wired, for a
    long-running console. Never raises: what cannot start is reported in ``Services.error``."""
    if settings is None:
        try:
            settings = load_settings()
        except SettingsError as exc:
            # defaults to render with, marked so the sign-in fails closed (never demo mode)
            fallback = Settings(load_error=one_line(exc))
            return Services(fallback, None, None, None, error=f"Settings: {exc}")
    return _wired(settings)


def _wired(settings: Settings) -> Services:
    """The parts of :func:`open_services` on ``settings``; without a store only the engine starts."""
    errors: list[str] = []
    store = _started(
        errors,
        "store",
        "Store unavailable",
        lambda: Store(settings.db_path, busy_timeout_ms=int(settings.store_busy_timeout_s * 1000)),
    )
    backend = _started(errors, "backend", "Engine unavailable", lambda: make_backend(settings, store))
    narrative.warm_up(settings)
    if store is None:
        return Services(settings, None, backend, None, error="; ".join(errors))
    mirror: KestraMirror | None = None
    if isinstance(backend, KestraBackend):
        mirror = KestraMirror(store, backend, settings)
        mirror.start(settings.kestra_mirror_interval_s)
    approvals: ApprovalService | None = None
    recovery: list[dict[str, Any]] = []
    inbound: Inbound | None = None
    if backend is not None:
        approvals, recovery = _approvals(settings, store, backend, mirror, errors)
        # embedded engine: delivery and launch commit together
        inbound = Inbound(
            store, backend, settings, local=backend if isinstance(backend, EmbeddedEngine) else None
        )
    # on Kestra nothing else expires approvals while no page is open (the embedded engine's
    # approval timer does it there)
    expire = approvals.maybe_expire if approvals is not None and mirror is not None else None
    notifier = _started(
        errors,
        "notifications",
        "Notifications unavailable",
        lambda: start_notifications(settings, store, before_round=expire),
    )
    sessions = _started(
        errors,
        "sessions",
        "Sessions unavailable (sign-ins last until a reload)",
        lambda: Sessions(store, settings),
        catch=OSError,  # the session secret cannot be read or written
    )
    return Services(
        settings,
        store,
        backend,
        approvals,
        error="; ".join(errors),
        recovery=recovery,
        notifier=notifier,
        mirror=mirror,
        inbound=inbound,
        sessions=sessions,
    )


def _approvals(
    settings: Settings, store: Store, backend: Backend, mirror: KestraMirror | None, errors: list[str]
) -> tuple[ApprovalService | None, list[dict[str, Any]]]:
    """The approval service (refreshed by the mirror on Kestra) and, on the embedded engine, the
    start-up recovery its wiring runs."""
    approvals = _started(
        errors,
        "approval service",
        "Approvals unavailable",
        lambda: ApprovalService(
            store,
            backend,
            settings,
            expire_every_s=READ_EXPIRY_EVERY_S,
            refresh=mirror.refresh if mirror is not None else None,
        ),
    )
    if approvals is None or not isinstance(backend, EmbeddedEngine):
        return approvals, []
    recovery = _started(
        errors, "approval service", "Approvals unavailable", lambda: wire_embedded(backend, approvals)
    )
    return approvals, recovery or []


def _started(
    errors: list[str],
    part: str,
    unavailable: str,
    start: Callable[[], T],
    catch: type[Exception] = Exception,
) -> T | None:
    """``start()``; when it raises ``catch``, None, the traceback in the log and ``unavailable: why``
    in ``errors`` (a missing or corrupt database must not take the console down)."""
    try:
        return start()
    except catch as exc:
        log.exception("%s unavailable", part)
        errors.append(f"{unavailable}: {one_line(exc)}")
        return None


_shared: Services | None = None
_shared_lock = threading.Lock()


def shared_services() -> Services:
    """The process's one :class:`Services`, opened on first use (:func:`open_services`), for the
    pages and the HTTP API alike. Thread-safe: of threads asking at once, one opens, the others
    wait and get the same object. Once it is closed (:func:`close_shared_services`, or
    ``Services.close()``), the next call opens a new one from the settings of that moment."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed:
            _shared = open_services()
        return _shared


def close_shared_services(wait: bool = True) -> None:
    """Close the shared services, if open (the server's shutdown)."""
    global _shared
    with _shared_lock:
        services, _shared = _shared, None
    if services is not None and not services.closed:
        services.close(wait=wait)
