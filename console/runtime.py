"""The composition root: builds the console's parts from the settings and wires them, in one place,
for the command line and the Streamlit side alike (no Streamlit here).

What the wiring adds to the parts on their own (the embedded engine):

- the approval service's throttled expiry runs before the engine's reads of executions, so a page
  never shows an execution waiting for an approval that is already overdue;
- the approval service's expiry timer runs in the background (every ``EXPIRY_TIMER_S``), so an
  approval nobody decides is rejected even when no page is open;
- at start, after the engine took over what a dead process left running, the approval service
  expires what fell due meanwhile and applies the decisions that never reached the engine.

On Kestra the flow's Pause has its own timeout and the approval service expires overdue requests
whenever the Approvals page lists them; nothing else is wired.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from console.access.approvals import ApprovalService
from console.engines.backend import Backend
from console.engines.embedded.runner import EmbeddedEngine
from console.engines.factory import make_backend
from console.settings import Settings, SettingsError, load_settings
from console.storage import Store

log = logging.getLogger(__name__)

EXPIRY_TIMER_S = 15.0
"""How often the background timer expires overdue approvals."""
READ_EXPIRY_EVERY_S = 2.0
"""At most this often an engine read expires overdue approvals first."""


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

    def close(self, wait: bool = True) -> None:
        """Stop the expiry timer and the engine's workers."""
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

    def close(self, wait: bool = True) -> None:
        self.approvals.stop()
        self.engine.close(wait=wait)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


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


def embedded_runtime(
    settings: Settings,
    store: Store | None = None,
    *,
    synchronous: bool = False,
    max_workers: int = 2,
    recover: bool = True,
    expiry_timer_s: float | None = EXPIRY_TIMER_S,
    expire_every_s: float = READ_EXPIRY_EVERY_S,
) -> EmbeddedRuntime:
    """The embedded engine on ``store`` (or on ``settings.db_path``) with its approval service."""
    engine = EmbeddedEngine(
        settings, store, max_workers=max_workers, synchronous=synchronous, recover=recover
    )
    approvals = ApprovalService(engine.store, engine, settings, expire_every_s=expire_every_s)
    report = wire_embedded(engine, approvals, recover=recover, expiry_timer_s=expiry_timer_s)
    return EmbeddedRuntime(settings, engine.store, engine, approvals, report)


def open_services(settings: Settings | None = None) -> Services:
    """Settings, the store, the engine the settings ask for and the approval service, wired, for a
    long-running console. Never raises: what cannot start is reported in ``Services.error``."""
    if settings is None:
        try:
            settings = load_settings()
        except SettingsError as exc:
            # defaults to render with, marked so the sign-in fails closed (never demo mode)
            fallback = Settings(load_error=_one_line(exc))
            return Services(fallback, None, None, None, error=f"Settings: {exc}")
    store: Store | None = None
    backend: Backend | None = None
    approvals: ApprovalService | None = None
    recovery: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        store = Store(settings.db_path)
    except Exception as exc:  # a missing/corrupt database must not take the console down
        log.exception("store unavailable")
        errors.append(f"Store unavailable: {_one_line(exc)}")
    try:
        backend = make_backend(settings, store)
    except Exception as exc:
        log.exception("backend unavailable")
        errors.append(f"Engine unavailable: {_one_line(exc)}")
    if store is not None and backend is not None:
        try:
            approvals = ApprovalService(store, backend, settings, expire_every_s=READ_EXPIRY_EVERY_S)
            if isinstance(backend, EmbeddedEngine):
                recovery = wire_embedded(backend, approvals)
        except Exception as exc:
            log.exception("approval service unavailable")
            errors.append(f"Approvals unavailable: {_one_line(exc)}")
    return Services(settings, store, backend, approvals, error="; ".join(errors), recovery=recovery)
