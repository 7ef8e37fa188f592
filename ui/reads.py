"""Cached reads of the store and the engine for the pages (cleared by ``clear_caches()`` after every
write). The store/backend arguments start with "_" so Streamlit does not hash them; the database
path is part of the key so two data directories in one process never share entries."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from console.domain.executions import Execution
from console.domain.models import Decision
from console.engines.backend import Backend
from console.loop import scenarios
from console.loop.effectiveness import Effectiveness, action_effectiveness
from console.loop.postmortem import Postmortem, write_postmortem
from console.presentation import charts, tables
from console.presentation.approval_card import Levels, metric_levels
from console.presentation.formatting import field, md_escape
from console.presentation.learning import learning_frame, merge_learning
from console.runtime import Services
from console.storage import DashboardKpis, Store

READ_TTL_S = 5
FIRST_SYNC_WAIT_S = 15.0
"""How long the first page on Kestra waits for the mirror's first copy (then it shows what it has)."""


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_kpis(_store: Store, db: str) -> DashboardKpis:
    return _store.deployments.dashboard_kpis()


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_deployments(
    _store: Store,
    db: str,
    service: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    return _store.deployments.list(service=service or None, status=status or None, limit=limit, offset=offset)


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_latest_decisions(_store: Store, db: str, limit: int = 10) -> list[dict[str, Any]]:
    return _store.deployments.latest_decisions(limit)


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_service_health(_store: Store, db: str) -> list[dict[str, Any]]:
    return _store.deployments.service_health()


class _LearningCache:
    """The Learning read model, kept per process and refreshed incrementally (only outcome
    rows written since the last read are fetched, see ``Store.outcomes.learning_rows``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: dict[str, pd.DataFrame] = {}
        self.after: dict[str, int] = {}


@st.cache_resource(show_spinner=False)
def _learning_cache() -> _LearningCache:
    return _LearningCache()


def read_learning(store: Store, db: str) -> pd.DataFrame:
    cache = _learning_cache()
    with cache.lock:
        fresh = learning_frame(store.outcomes.learning_rows(after=cache.after.get(db, 0)))
        frame = merge_learning(cache.frames.get(db), fresh)
        cache.frames[db] = frame
        if not frame.empty:
            cache.after[db] = int(frame["seq"].max())
        return frame


@st.cache_data(ttl=30, show_spinner=False)
@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_outcome_provenance(_store: Store, db: str) -> tuple[int, int]:
    return _store.outcomes.provenance()


def read_deployed_services(_store: Store, db: str) -> list[str]:
    return _store.deployments.services()


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_deployment(_store: Store, db: str, deployment_id: str) -> dict[str, Any] | None:
    return _store.deployments.get(deployment_id)


@st.cache_data(ttl=3600, show_spinner=False, max_entries=64)
def read_snapshot_series(
    _store: Store, db: str, snapshot_ref: str
) -> dict[str, tuple[list[float], list[float]]]:
    """A deployment's metric series (a stored snapshot never changes: cached by its key)."""
    return charts.snapshot_series(_store.documents.get(snapshot_ref))


@st.cache_data(ttl=3600, show_spinner=False, max_entries=64)
def read_levels(_store: Store, db: str, snapshot_ref: str) -> dict[str, Levels]:
    """Each metric's level before the deploy and at the window's end, as the summary states them."""
    return metric_levels(_store.documents.get(snapshot_ref))


@st.cache_data(ttl=30, show_spinner=False)
def read_effectiveness(_store: Store, db: str) -> list[Effectiveness]:
    """Action effectiveness from the measured outcomes (console/loop/effectiveness.py)."""
    return action_effectiveness(_store.outcomes.effectiveness_rows())


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_deployment_of(_store: Store, db: str, execution_id: str) -> dict[str, Any] | None:
    return _store.deployments.for_execution(execution_id)


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_story(_store: Store, db: str, execution_id: str) -> dict[str, Any]:
    """What a deployment's story is told from (``Store.stories.incident_material``)."""
    return _store.stories.incident_material(execution_id)


def read_story_execution(services: Services, execution_id: str) -> Execution | None:
    """The execution for a story's steps: the store's copy (embedded engine), else the engine's."""
    found = services.store.executions.get(execution_id) if services.store is not None else None
    if found is None and services.backend is not None:
        try:
            found = read_execution(services.backend, db_key(services), execution_id)
        except Exception:  # a story without its steps is still a story
            return None
    return found


@st.cache_data(ttl=24 * 3600, show_spinner=False, max_entries=64)
def rewritten_postmortem(_services: Services, db: str, execution_id: str) -> Postmortem:
    """The LLM's rewrite of an incident's postmortem, made once per execution (on a click: it
    costs a call bounded by LLM_TIMEOUT_S) and kept for a day."""
    material = _services.store.stories.incident_material(execution_id)
    execution = read_story_execution(_services, execution_id)
    snapshot = _services.store.deployments.snapshot_for_execution(execution_id)
    return write_postmortem(
        execution, _services.settings, execution_id=execution_id, snapshot=snapshot, **material
    )


@st.cache_data(ttl=3600, show_spinner=False, max_entries=256)
def read_decision(_store: Store, db: str, decision_ref: str) -> Decision:
    """A deployment's decision (a stored document never changes: cached by its key)."""
    return Decision.from_dict(_store.documents.get(decision_ref))


def db_key(services: Services) -> str:
    return str(services.settings.db_path)


def require_store(services: Services) -> bool:
    """Show why the page cannot render when the store is missing; True when it is there. On Kestra
    the read model is brought up to date first (at most every few seconds; a sync that brought
    something new drops the cached reads)."""
    if services.store is None:
        st.error(
            md_escape(services.error or "The console's database is not available."), icon=":material/block:"
        )
        return False
    if services.mirror is not None:
        if not services.mirror.wait_first_sync(0):
            with st.spinner("Copying Kestra's runs into the console…"):
                services.mirror.wait_first_sync(FIRST_SYNC_WAIT_S)
            st.cache_data.clear()
        report = services.mirror.sync_soon()
        if report is not None and report.projected:
            st.cache_data.clear()
    return True


@st.cache_data(ttl=3600, show_spinner=False, max_entries=256)
def read_plan(_backend: Backend, db: str, execution_id: str) -> dict[str, Any] | None:
    """The plan a paused run waits on (``decide``'s output; it never changes once decided), so a page
    refreshing every few seconds does not ask the engine again."""
    plan = tables.task_output(_backend.get_execution(execution_id), "decide", "plan")
    return dict(plan) if isinstance(plan, dict) else None


@st.cache_data(ttl=2, show_spinner=False)
def read_execution(_backend: Backend, db: str, execution_id: str) -> Execution:
    return _backend.get_execution(execution_id)


@dataclass(frozen=True)
class ScenarioCard:
    id: str
    title: str
    description: str
    expected_verdict: str


@st.cache_data(ttl=300, show_spinner=False)
def read_scenarios(mock_dir: str) -> list[ScenarioCard]:
    """The demo scenarios (``console.loop.scenarios.list_scenarios``), as plain cards: the README's
    one-click demo first (above the fold), then by id."""
    cards = [
        ScenarioCard(
            id=str(_attr(s, "id")),
            title=str(_attr(s, "title") or _attr(s, "id")),
            description=str(_attr(s, "description") or ""),
            expected_verdict=str(_attr(s, "expected_verdict") or ""),
        )
        for s in scenarios.list_scenarios(mock_dir)
    ]
    return sorted(cards, key=lambda card: card.id != scenarios.DEMO_SCENARIO)


def _attr(obj: object, name: str) -> object:
    return field(obj, name)
