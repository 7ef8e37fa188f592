"""The same scenarios run on the embedded engine and on Kestra (the project's fake Kestra server, the
real client talking HTTP to it, the console's mirror copying its executions): every page shows the
same deployments, KPIs, decisions, metric charts' series, approvals and learning rows.

Runs differ in what no page is asked to agree on: ids, timestamps (each run is moved to "now"), the
engine's name. Everything else a page shows is compared as the page shows it (AppTest).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.io as pio
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from console.access.approvals import ApprovalService
from console.access.auth import Identity, Role
from console.domain.executions import State
from console.engines.kestra.backend import KestraBackend
from console.engines.kestra.mirror import KestraMirror
from console.runtime import embedded_runtime
from console.settings import Secret, Settings
from console.storage import Store
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra
from tests.ui.conftest import APP, series
from tests.waiting import patience

pytestmark = [pytest.mark.parity, pytest.mark.slow]

# (scenario, what a human does with its approval, if it asks for one)
RUNS = [
    ("healthy-hotfix", None),
    ("memory-leak", ("approve", "carol")),
    ("db-timeouts", ("reject", "carol")),
    ("dependency-outage", None),
    ("crash-loop", None),  # left waiting for approval
]
ENGINES = ("embedded", "kestra")
LAUNCHER = Identity("alice", Role.APPROVER, source="password")


def _decide_all(approvals: ApprovalService, store: Store) -> None:
    """Each pending approval decided the way RUNS says for its scenario (or left waiting)."""
    for item in approvals.pending():
        how = dict(RUNS)[store.deployments.for_execution(item["execution_id"])["scenario"]]
        if how is not None:
            verb, who = how
            comment = "" if verb == "approve" else "not now"
            who_signed_in = Identity(who, Role.APPROVER, source="password")
            approvals.vote(item["id"], who_signed_in, verb == "approve", comment)


def _wait(read_state, ids: list[str], done: set[State], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + patience(timeout)
    while time.monotonic() < deadline:
        if all(read_state(i) in done for i in ids):
            return
        time.sleep(0.05)
    raise AssertionError(f"runs did not reach {done}: {[read_state(i) for i in ids]}")


def _run_embedded(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir)
    runtime = embedded_runtime(settings, expiry_timer_s=None)
    try:
        ids = []
        for scenario, _ in RUNS:  # one at a time: the same order of deployments on both engines
            ids.append(runtime.engine.launch_scenario(scenario, "alice"))
            runtime.approvals.record_launch(ids[-1], LAUNCHER)  # as the Scenarios page does
            _wait(lambda i: runtime.engine.get_execution(i).state, ids[-1:], {State.PAUSED, State.SUCCESS})
        _decide_all(runtime.approvals, runtime.store)
        _wait(lambda i: runtime.engine.get_execution(i).state, ids, {State.PAUSED, State.SUCCESS})
    finally:
        runtime.close()
        runtime.store.close()


def _kestra_settings(url: str, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, kestra_url=url, kestra_username=USER, kestra_password=Secret(PASSWORD))


def _run_kestra(fake: FakeKestra, data_dir: Path) -> None:
    settings = _kestra_settings(fake.url, data_dir)
    backend = KestraBackend(settings)
    store = Store(settings.db_path)
    mirror = KestraMirror(store, backend, settings)
    approvals = ApprovalService(store, backend, settings, refresh=mirror.refresh)
    try:
        ids = []
        for scenario, _ in RUNS:
            ids.append(backend.launch_scenario(scenario, "alice"))
            approvals.record_launch(ids[-1], LAUNCHER)
            _wait(lambda i: backend.get_execution(i).state, ids[-1:], {State.PAUSED, State.SUCCESS})
            mirror.sync()
        _decide_all(approvals, store)
        _wait(lambda i: backend.get_execution(i).state, ids, {State.PAUSED, State.SUCCESS})
        mirror.sync()
    finally:
        store.close()


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> Iterator[dict[str, dict[str, str]]]:
    root = tmp_path_factory.mktemp("parity")
    fake = FakeKestra(username=USER, password=PASSWORD, settings=Settings(data_dir=root / "fake")).start()
    fake.deploy_dir(FLOWS_DIR)
    try:
        _run_embedded(root / "embedded")
        _run_kestra(fake, root / "kestra")
        yield {  # both show the pages to a picked demo identity (on Kestra only where enabled)
            "embedded": {"CONSOLE_DATA_DIR": str(root / "embedded"), "CONSOLE_DEMO_IDENTITY": "1"},
            "kestra": {
                "CONSOLE_DEMO_IDENTITY": "1",
                "CONSOLE_DATA_DIR": str(root / "kestra"),
                "KESTRA_URL": fake.url,
                "KESTRA_USERNAME": USER,
                "KESTRA_PASSWORD": PASSWORD,
            },
        }
    finally:
        fake.stop()


@contextmanager
def console(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    """The console's process as it would start with ``env`` (caches and services fresh)."""
    for name in ("KESTRA_URL", "KESTRA_USERNAME", "KESTRA_PASSWORD", "TOGETHER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONSOLE_SECRETS", str(tmp_path / "no-secrets.toml"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        yield
    finally:
        from ui.services import get_services

        get_services().close()
        st.cache_data.clear()
        st.cache_resource.clear()


def _page(page: str, **state: Any) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["demo_name"] = "viewer-vic"
    at.session_state["demo_role"] = "admin"
    at.run()
    at.switch_page(f"pages/{page}.py")
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _frame(at: AppTest, column: str, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The rows of the page's (first) table that has ``column``, as text, without ``drop``
    (data grids, then static tables: the actions of a run are a wrapping ``st.table``)."""
    for element in [*at.dataframe, *at.table]:
        frame = element.value
        if column in frame.columns:
            keep = [c for c in frame.columns if c not in drop]
            return frame[keep].map(lambda v: "" if pd.isna(v) else str(v)).to_dict("records")
    return []


def _row_key(row: dict[str, Any]) -> tuple[str, str]:
    """Rows are listed newest deploy first, and a scenario's deploy time is "now" minus its
    recorded window: the order follows when each run was collected, which no engine decides."""
    return row["service"], row["version"]


def _figures(at: AppTest) -> dict[str, list[list[Any]]]:
    """Each chart's series as drawn (values, and bar labels), by the chart's title; the x axes are
    times, which differ between runs."""
    out = {}
    for element in at.get("plotly_chart"):
        figure = pio.from_json(element.proto.spec)
        title = figure.layout.title.text or "?"
        out[title] = [[_plain(y) for y in series(trace.y)] for trace in figure.data if trace.y is not None]
    return out


def _plain(value: Any) -> Any:
    return round(float(value), 6) if isinstance(value, int | float) else str(value)


TIMES = ("deployed_at", "requested_at", "decided_at", "expires_at", "finished", "at", "start")
IDS = ("id", "deployment_id", "execution_id", "link", "subject")
OUTCOME_LINES = ("**Outcome", "Approval")
KPI_TIMES = ("Loop time", "Human wait")  # how long the test took: not the engines' to agree on


def _views(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """What each page shows, minus ids and times."""
    drop = TIMES + IDS
    with console(monkeypatch, env, tmp_path):
        view: dict[str, Any] = {}
        overview = _page("overview")
        view["kpis"] = {m.label: m.value for m in overview.metric if m.label not in KPI_TIMES}
        view["latest"] = sorted(_frame(overview, "verdict", drop), key=_row_key)
        deployments = _page("deployments")
        rows = _frame(deployments, "previous_version", drop)
        view["deployments"] = sorted(rows, key=_row_key)
        view["details"] = {}
        for row, shown in enumerate(rows):
            detail = _page("deployments", deployments_table={"selection": {"rows": [row], "columns": []}})
            view["details"][_row_key(shown)] = {
                "texts": [t.value for t in detail.text],
                "outcome": [m.value for m in detail.markdown if m.value.startswith(OUTCOME_LINES)],
                "evidence": _frame(detail, "p_value", drop),
                "actions": _frame(detail, "executor", drop),
            }
        approvals = _page("approvals")
        view["decided"] = _frame(approvals, "decided_by", drop)
        view["pending"] = sorted(  # each card's line naming who started the run
            m.value for m in approvals.markdown if "requested by **" in m.value.lower()
        )
        view["charts"] = {}
        store = Store(Path(env["CONSOLE_DATA_DIR"]) / "console.sqlite3")
        for service in list(_page("metrics").selectbox(key="metrics_service").options):
            for row in store.deployments.list(service=service):  # this world's ids, picked as a user would
                at = _page("metrics", metrics_service=service, metrics_deployment=row["id"])
                view["charts"][(service, row["version"], row["verdict"])] = _figures(at)
        store.close()
        learn = _page("learning")
        view["learning"] = {
            "metrics": {m.label: m.value for m in learn.metric},
            "agreement": _frame(learn, "humans approved", drop),
            "calibration": _frame(learn, "confidence bucket", drop),
        }
        return view


def test_every_page_shows_the_same_on_kestra_and_on_the_embedded_engine(worlds, monkeypatch, tmp_path):
    embedded = _views(monkeypatch, worlds["embedded"], tmp_path)
    kestra = _views(monkeypatch, worlds["kestra"], tmp_path)
    assert len(embedded["deployments"]) == len(RUNS)
    assert embedded["kpis"]["Deployments today"] == str(len(RUNS))
    for part in ("kpis", "latest", "deployments", "details", "decided", "pending", "charts", "learning"):
        assert kestra[part] == embedded[part], part
    # and what was compared is not empty: decisions, actions, approvals, charts and learning rows
    assert all(detail["texts"] for detail in embedded["details"].values())
    assert any(detail["actions"] for detail in embedded["details"].values())
    assert len(embedded["decided"]) == 2 and len(embedded["pending"]) == 1
    assert len(embedded["charts"]) == len(RUNS) and all(embedded["charts"].values())
    assert embedded["learning"]["agreement"] and embedded["learning"]["metrics"]["Recorded decisions"] == "4"
