"""Every page under AppTest, fresh and seeded, plus the key interactions."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from console.domain.executions import Execution, State
from console.engines.embedded.runner import EmbeddedEngine
from console.presentation.formatting import md_escape, plain
from tests.ui.conftest import (
    APP,
    PAGES,
    crafted_reject,
    make_app,
    password_of,
    series,
    signed_in_app,
    texts,
    wait_for,
    write_users,
)
from tests.waiting import patience


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_on_a_fresh_machine(app_env, page):
    at = make_app(role="admin", page=page)
    assert not at.exception, at.exception
    assert not texts(at, "error"), texts(at, "error")


def test_fresh_overview_says_what_the_product_is_and_points_to_the_one_click_demo(app_env):
    at = make_app(page="overview")
    assert texts(at, "caption")[1].startswith("The console of an autonomous DevOps loop: every deployment")
    infos = " ".join(texts(at, "info"))
    assert "No deployment has been analysed" in infos
    assert "Demo mode" in " ".join(texts(at, "caption"))
    at.switch_page("pages/scenarios.py").run()
    launches = [b.key for b in at.button if (b.key or "").startswith("launch_")]
    assert launches[0] == "launch_memory-leak" and len(launches) > 1  # the README's demo comes first
    assert any("the one-click demo" in m for m in texts(at, "markdown"))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_with_data(app_env, paused_leak, engine, page):
    engine.run_sync(scenario="healthy-hotfix", triggered_by="seed", timeout=60)
    at = make_app(role="admin", page=page)
    assert not at.exception, at.exception
    assert not texts(at, "error"), texts(at, "error")


def test_overview_tiles_count_the_pending_approval(app_env, paused_leak):
    at = make_app(page="overview")
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Pending approvals"] == "1"
    assert tiles["Deployments today"] == "1"


def test_launch_scenario_once_even_on_double_click(app_env, engine, monkeypatch):
    import threading

    import console.loop.steps as steps

    release, collect = threading.Event(), steps.collect

    def held(*args, **kwargs):  # the run stays RUNNING until both clicks are in
        release.wait(patience(30))
        return collect(*args, **kwargs)

    monkeypatch.setattr(steps, "collect", held)
    at = make_app(page="scenarios")
    try:
        at.button(key="launch_memory-leak").click().run()
        at.button(key="launch_memory-leak").click().run()  # a second click while it runs
    finally:
        release.set()
    assert "memory-leak is already running; not launched again." in texts(at, "warning")
    launches = at.session_state["launches"]
    assert list(launches) == ["memory-leak"]
    _, total = engine.store.executions.search()
    assert total == 1
    execution_id = launches["memory-leak"]["execution_id"]
    wait_for(lambda: engine.get_execution(execution_id).state == State.PAUSED)
    at.run()
    markdown = " ".join(texts(at, "markdown"))
    assert "as expected" in markdown and "not as expected" not in markdown
    assert "Awaiting approval" in markdown and "Running…" not in [b.label for b in at.button]


def test_approve_rolls_back_in_one_click_and_a_double_click_decides_once(
    app_env, paused_leak: Execution, engine: EmbeddedEngine
):
    at = make_app("alice", "approver", "approvals")
    approval_id = engine.store.approvals.for_execution(paused_leak.id)["id"]
    button = at.button(key=f"approve_{approval_id}")
    button.click().run()
    assert not at.exception
    assert any("approved by alice" in s for s in texts(at, "success"))
    button.click().run()  # the second click of a double click, on the card drawn before the first
    assert any("approved by alice" in s for s in texts(at, "success")), texts(at, "warning")
    assert not texts(at, "warning")  # not "Already decided": the first click decided, here
    wait_for(lambda: engine.get_execution(paused_leak.id).state == State.SUCCESS)
    deployment = engine.store.deployments.for_execution(paused_leak.id)
    assert deployment["status"] == "rolled back"


def test_rejection_needs_a_comment(app_env, paused_leak, engine):
    approval_id = engine.store.approvals.for_execution(paused_leak.id)["id"]
    at = make_app("alice", "approver", "approvals")
    at.button(key=f"reject_{approval_id}").click().run()
    at.button(key="approval_confirm").click().run()
    assert "A rejection needs a comment saying why." in texts(at, "error")
    assert engine.store.approvals.get(approval_id)["status"] == "pending"
    at.text_area(key="approval_comment").input("leak is in a dependency, rolling forward").run()
    at.button(key="approval_confirm").click().run()
    assert any("rejected by alice" in s for s in texts(at, "success"))
    row = engine.store.approvals.get(approval_id)
    assert row["status"] == "rejected" and row["comment"] == "leak is in a dependency, rolling forward"


def test_viewer_is_refused_by_the_service(app_env, paused_leak, engine):
    approval_id = engine.store.approvals.for_execution(paused_leak.id)["id"]
    at = make_app("victor", "viewer", "approvals")
    assert at.button(key=f"approve_{approval_id}").disabled
    assert at.button(key=f"reject_{approval_id}").disabled
    assert any("Approve and Reject are off: You are signed in as a viewer" in c for c in texts(at, "caption"))
    # a crafted session state opens the reject dialog anyway: the service must refuse, cleanly
    crafted_reject(at, approval_id)
    assert not at.exception
    errors = texts(at, "error")
    assert any(e.startswith("Not allowed:") and "viewer" in e for e in errors), errors
    assert engine.store.approvals.get(approval_id)["status"] == "pending"


def test_requester_cannot_approve_own_request(app_env, paused_leak, engine):
    approval = engine.store.approvals.for_execution(paused_leak.id)
    at = make_app(approval["requested_by"], "admin", "approvals")
    assert at.button(key=f"approve_{approval['id']}").disabled  # the card says why
    assert any("cannot approve your own request" in c for c in texts(at, "caption")), texts(at, "caption")
    crafted_reject(at, approval["id"])
    assert any("cannot approve your own request" in e for e in texts(at, "error")), texts(at, "error")
    assert engine.store.approvals.get(approval["id"])["status"] == "pending"


def test_second_decision_gets_already_decided(app_env, paused_leak, engine):
    approval_id = engine.store.approvals.for_execution(paused_leak.id)["id"]
    first = make_app("alice", "approver", "approvals")
    second = make_app("bob", "approver", "approvals")  # both saw the request pending
    first.button(key=f"approve_{approval_id}").click().run()
    second.button(key=f"reject_{approval_id}").click().run()
    second.text_area(key="approval_comment").input("no").run()
    second.button(key="approval_confirm").click().run()
    assert not second.exception
    warnings = texts(second, "warning")
    assert any(w.startswith("Already decided:") and "alice" in w for w in warnings), warnings


def test_execution_deep_link_opens_detail(app_env, paused_leak):
    at = make_app(page="executions")
    at.query_params["execution"] = paused_leak.id
    at.run()
    assert not at.exception
    assert paused_leak.id in [c.value for c in at.code]
    assert "payment-service v1.2.3" in texts(at, "subheader")  # titled by service and version
    assert any(c.startswith("devops.loop.devops-loop · deployed") for c in texts(at, "caption"))
    markdown = " ".join(texts(at, "markdown"))
    assert "Run :orange-badge[:material/pause_circle: PAUSED] · deployment :orange-badge[" in markdown
    assert "awaiting approval]" in markdown
    assert [t.label for t in at.tabs][:2] == ["All logs", "collect"]


def test_unknown_execution_is_one_line(app_env):
    at = make_app(page="executions")
    at.query_params["execution"] = "nope"
    at.run()
    assert not at.exception
    assert texts(at, "error") == ["execution nope: execution nope not found"]


def test_log_text_is_never_html(app_env, paused_leak, engine):
    payload = "<script>alert('x')</script> **bold**"
    with engine.store.db.write() as conn:
        engine.store.executions.log_in(conn, paused_leak.id, "ERROR", payload, task_id="collect")
    at = make_app(page="executions")
    at.query_params["execution"] = paused_leak.id
    at.run()
    frames = [df.value for df in at.dataframe]
    assert any(payload in set(f["message"]) for f in frames if "message" in f)
    for md in at.markdown:  # never rendered as markdown/HTML
        assert "<script>" not in md.value and not md.proto.allow_html


def test_deployment_selection_shows_decision_card(app_env, paused_leak):
    at = make_app(page="deployments")
    at.session_state["deployments_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception
    assert "payment-service v1.2.2 → v1.2.3" in texts(at, "subheader")
    assert ":red-badge[:material/undo: ROLLBACK]" in texts(at, "markdown")
    evidence = next(t.value for t in at.table if "metric" in t.value).map(plain)
    evidence.columns = [plain(c) for c in evidence.columns]
    assert "High ▲" in set(evidence["result"])
    error_rate = evidence[evidence["metric"] == "Error rate"].iloc[0]
    # the summary's numbers, in %, under a header naming the statistic (st.table: never cut off)
    after = error_rate["end of window (median, last half)"]
    assert (error_rate["before (median)"], after) == ("0.8%", "34.9%")


def test_settings_masks_secrets_and_needs_admin(app_env, monkeypatch):
    monkeypatch.setenv("TOGETHER_API_KEY", "sk-very-secret-value")
    at = make_app(role="admin", page="settings")
    table = next(df.value for df in at.dataframe)
    assert dict(zip(table["field"], table["value"], strict=True))["together_api_key"] == "set"
    rendered = " ".join(str(df.value.to_csv()) for df in at.dataframe) + " ".join(texts(at, "markdown"))
    assert "sk-very-secret-value" not in rendered
    approver = make_app(role="approver")
    with pytest.raises(Exception):  # not in the approver's navigation at all
        approver.switch_page("pages/settings.py").run()


@pytest.mark.parametrize("page", PAGES)
def test_unreachable_kestra_shows_a_banner_not_a_traceback(app_env, tmp_path, monkeypatch, page):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("KESTRA_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("KESTRA_TIMEOUT_S", "0.5")
    # on Kestra a picked demo identity is off: an admin signs in with a password
    monkeypatch.setenv("CONSOLE_SECRETS", str(write_users(tmp_path / "secrets.toml", ada="admin")))
    at = signed_in_app("ada", page=page)
    assert not at.exception, at.exception
    sidebar = " ".join(texts(at, "markdown"))
    assert "red-badge[:material/error: kestra]" in sidebar
    if page == "executions":
        assert any(w.startswith("Engine unreachable (search):") for w in texts(at, "warning")), texts(
            at, "warning"
        )


def test_password_mode_signs_in_with_a_hashed_password(app_env, tmp_path, monkeypatch, paused_leak):
    from console.access.auth import hash_password

    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        f'[console_auth.users.carol]\npassword_hash = "{hash_password("s3cret!", iterations=1000)}"\n'
        'role = "approver"\n'
    )
    monkeypatch.setenv("CONSOLE_SECRETS", str(secrets))
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not any("Demo mode" in c for c in texts(at, "caption"))
    at.switch_page("pages/approvals.py").run()
    approve = next(b for b in at.button if (b.key or "").startswith("approve_"))
    assert approve.disabled  # nobody signed in yet
    at.text_input(key="login_user").input("carol")
    at.text_input(key="login_password").input("wrong")
    at.button(key="sign_in").click().run()
    assert "Unknown user or wrong password" in texts(at, "error")
    at.text_input(key="login_password").input("s3cret!")
    at.button(key="sign_in").click().run()
    assert not at.exception
    assert "**carol** · approver" in texts(at, "markdown")
    assert not next(b for b in at.button if (b.key or "").startswith("approve_")).disabled


def test_the_card_signs_in_right_where_the_decision_is_then_approves_in_one_click(
    app_env, tmp_path, monkeypatch, paused_leak, engine
):
    """A phone hides the sidebar: the first card's decision bar carries the sign-in form."""
    monkeypatch.setenv("CONSOLE_SECRETS", str(write_users(tmp_path / "secrets.toml", carol="approver")))
    approval_id = engine.store.approvals.for_execution(paused_leak.id)["id"]
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("pages/approvals.py").run()
    assert at.button(key=f"approve_{approval_id}").disabled
    assert ":material/block: Approve and Reject are off: Sign in to decide." in texts(at, "caption")
    at.text_input(key="card_login_user").input("carol")
    at.text_input(key="card_login_password").input(password_of("carol"))
    at.button(key="card_login_submit").click().run()
    assert not at.exception
    assert "**carol** · approver" in texts(at, "markdown")  # the sidebar knows it too
    assert not [t for t in at.text_input if t.key == "card_login_user"]  # the form is gone
    at.button(key=f"approve_{approval_id}").click().run()
    assert any("approved by carol" in s for s in texts(at, "success")), texts(at, "error")
    assert engine.store.approvals.get(approval_id)["decided_by"] == "carol"


def test_oidc_mode_maps_the_logged_in_email_to_a_role(app_env, tmp_path, monkeypatch, paused_leak):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        '[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\ncookie_secret = "x"\n'
        'client_id = "console"\nclient_secret = "y"\n'
        'server_metadata_url = "https://id.example.com/.well-known/openid-configuration"\n'
        '[console_auth.oidc_roles]\n"dana@example.com" = "approver"\n'
    )
    monkeypatch.setenv("CONSOLE_SECRETS", str(secrets))
    at = AppTest.from_file(APP, default_timeout=30)
    at.user = {"is_logged_in": False}
    at.run()
    assert [b.label for b in at.button] == ["Log in"]
    at.user = {"is_logged_in": True, "email": "dana@example.com"}
    at.run()
    assert "**dana@example.com** · approver" in texts(at, "markdown")
    at.user = {"is_logged_in": True, "email": "eve@example.com"}
    at.run()
    assert "**eve@example.com** · viewer" in texts(at, "markdown")
    at.user = {"is_logged_in": False}  # logging out drops the identity the pages act with
    at.run()
    assert "identity" not in at.session_state


def test_hostile_service_name_is_shown_literally(app_env, engine):
    from console.loop.steps import load_scenario

    doc = load_scenario("healthy-hotfix", app_env)
    hostile = "pay**ment** [x](http://e) :red[y]"
    doc["deployment"] = {**doc["deployment"], "service": hostile}
    engine.wait(engine.launch(doc, triggered_by="t"), timeout=60)
    at = make_app(page="overview")
    assert not at.exception
    [name] = [m.value for m in at.markdown if "ment" in m.value]
    assert name == "**" + md_escape(hostile) + "**"
    assert plain(name) == f"**{hostile}**"  # shown as typed, nothing interpreted


def test_decision_saved_but_engine_not_resumed_can_be_retried(app_env, paused_leak, engine):
    approval_id = engine.store.approvals.for_execution(paused_leak.id)["id"]
    with engine.store.db.write() as conn:  # the engine cannot find the execution (e.g. Kestra down)
        conn.execute("UPDATE executions SET id = id || '-away' WHERE id = ?", (paused_leak.id,))
    at = make_app("alice", "approver", "approvals")
    at.button(key=f"approve_{approval_id}").click().run()
    warnings = texts(at, "warning")
    assert any("saved but the engine could not be resumed" in w for w in warnings), warnings
    assert any("decision(s) are saved but the engine could not be told" in w for w in warnings)
    with engine.store.db.write() as conn:  # it is back
        conn.execute("UPDATE executions SET id = ? WHERE id = ?", (paused_leak.id, paused_leak.id + "-away"))
    at.button(key=f"retry_{approval_id}").click().run()
    assert f"{approval_id}: engine resumed" in texts(at, "success")
    wait_for(lambda: engine.get_execution(paused_leak.id).state == State.SUCCESS)


def test_deployment_deep_link(app_env, paused_leak, engine):
    deployment = engine.store.deployments.for_execution(paused_leak.id)
    at = make_app(page="deployments")
    at.query_params["deployment"] = deployment["id"]
    at.run()
    assert "payment-service v1.2.2 → v1.2.3" in texts(at, "subheader")


def test_executions_state_filter(app_env, paused_leak, engine):
    done = engine.run_sync(scenario="healthy-hotfix", triggered_by="seed", timeout=60)
    at = make_app(page="executions")
    assert set(at.dataframe[0].value["id"]) == {paused_leak.id, done.id}
    at.multiselect(key="ex_states").select("PAUSED").run()
    assert list(at.dataframe[0].value["id"]) == [paused_leak.id]
    at.multiselect(key="ex_states").unselect("PAUSED").select("FAILED").run()
    assert "No executions match." in texts(at, "info")


def test_metrics_charts_mark_the_deploy_and_flag_anomalies(app_env, paused_leak):
    import plotly.io

    at = make_app(page="metrics")
    assert not at.exception
    figures = {}
    for element in at.get("plotly_chart"):
        fig = plotly.io.from_json(element.proto.spec)
        figures[fig.layout.title.text] = fig
    comparison = figures["Before vs after the deploy"]
    colours = {bar.name: bar.marker.color for bar in comparison.data}
    worse = next(bar for bar in comparison.data if bar.name == "worse")
    assert colours["worse"] == "#D62728" and "Error rate" in worse.y  # errors rose: worse, red
    assert any("0.8% → 34.9%" in text for text in worse.text)  # the summary's numbers, in %
    memory = figures["Memory utilisation"]
    assert memory.layout.yaxis.tickformat == ".0%"  # the axis in % like the captions
    assert [s.type for s in memory.layout.shapes].count("line") == 1  # the deploy
    assert any(trace.name == "anomaly" for trace in memory.data)
    assert all(0 < len(series(trace.y)) <= 1200 for trace in memory.data)


def test_learning_what_if_threshold(app_env, paused_leak, engine):
    approval_id = engine.store.approvals.for_execution(paused_leak.id)["id"]
    from console.access.approvals import ApprovalService
    from console.access.auth import Identity, Role

    ApprovalService(engine.store, engine, app_env).vote(approval_id, Identity("zoe", Role.APPROVER), True)
    engine.wait(paused_leak.id, timeout=60)
    engine.run_sync(scenario="healthy-hotfix", triggered_by="seed", timeout=60)
    at = make_app(page="learning")
    assert not at.exception
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Recorded decisions"] == "2" and tiles["Decided by a human"] == "1"
    # both runs are scenarios: the page says its figures rest on simulated runs
    assert any("All 2 recorded decisions come from demo scenarios" in i.value for i in at.info)
    labels = [m.label for m in at.metric]
    assert len(labels) == len(set(labels))  # the slider on today's threshold: still two labels
    assert "Need a human at 80% (the same threshold)" in labels
    at.slider(key="learn_threshold").set_value(1.0).run()
    tiles = {m.label: m.value for m in at.metric}
    # at 1.0 no action runs on its own: both decisions wait for a human
    assert tiles["Need a human at 100%"] == "2" and "Need a human today (threshold 80%)" in tiles
    assert [b.label for b in at.get("download_button")] == [
        "SFT (Oumi conversations)",
        "KTO (unpaired)",
        "DPO (pairs)",
    ]


def test_sync_flows_failure_is_one_line(app_env, tmp_path, monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("KESTRA_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("KESTRA_TIMEOUT_S", "0.5")
    monkeypatch.setenv("CONSOLE_SECRETS", str(write_users(tmp_path / "secrets.toml", ada="admin")))
    at = signed_in_app("ada", page="settings")
    at.button(key="sync_flows").click().run()
    assert not at.exception
    errors = texts(at, "error")
    assert len(errors) == 1 and errors[0].startswith("Sync failed:") and "\n" not in errors[0]


def test_critical_action_needs_two_different_approvers(app_env, engine):
    execution = engine.run_sync(scenario="database-outage-before-deploy", triggered_by="seed", timeout=60)
    approval_id = engine.store.approvals.for_execution(execution.id)["id"]
    first = make_app("alice", "approver", "approvals")
    markdown = " ".join(texts(first, "markdown"))
    assert "2 approvers needed" in markdown and "**Votes so far:** none yet" in markdown
    first.button(key=f"approve_{approval_id}").click().run()
    assert any("1 more approver(s) needed" in s for s in texts(first, "success")), texts(first, "success")
    assert engine.store.approvals.get(approval_id)["status"] == "pending"
    # the same person cannot be the second approver: the bar says so (the service checks it too, below)
    assert first.button(key=f"approve_{approval_id}").disabled
    assert any("You already voted on this" in c for c in texts(first, "caption")), texts(first, "caption")
    second = make_app("bob", "admin", "approvals")
    assert "**Votes so far:** alice approved" in texts(second, "markdown")
    assert any("Still needed: 1 more approval from any approver except alice (voted)" in c
               for c in texts(second, "caption"))  # fmt: skip
    second.button(key=f"approve_{approval_id}").click().run()
    assert any("approved by bob" in s for s in texts(second, "success")), texts(second, "success")
    assert engine.store.approvals.get(approval_id)["status"] == "approved"


def test_two_overlapping_runs_of_one_service_each_chart_their_own_snapshot(app_env, engine):
    """memory-leak and healthy-hotfix both deploy payment-service: launched together, each
    deployment's Metrics charts show exactly its own snapshot (they used to share one series per
    service, where the two runs interleaved and a healthy deploy showed a leak)."""
    import plotly.io

    from console.presentation.charts import metric_title, snapshot_series

    ids = [engine.launch_scenario(s, "seed") for s in ("memory-leak", "healthy-hotfix")]
    for execution_id in ids:
        wait_for(lambda i=execution_id: engine.get_execution(i).state in (State.PAUSED, State.SUCCESS))
    charted = {}
    for execution_id in ids:
        deployment = engine.store.deployments.for_execution(execution_id)
        assert deployment["service"] == "payment-service"
        at = AppTest.from_file(APP, default_timeout=30)
        at.session_state["demo_name"] = "alice"
        at.query_params["deployment"] = deployment["id"]
        at.run()
        at.switch_page("pages/metrics.py").run()
        assert not at.exception
        lines = {}
        for element in at.get("plotly_chart"):
            figure = plotly.io.from_json(element.proto.spec)
            lines[figure.layout.title.text] = series(figure.data[0].y)
        own = snapshot_series(engine.snapshot_document(execution_id))
        memory = metric_title("memory_utilization")
        assert lines[memory] == pytest.approx(own["memory_utilization"][1])
        assert lines[metric_title("error_rate")] == pytest.approx(own["error_rate"][1])
        charted[execution_id] = lines[memory]
    leak, healthy = (charted[i] for i in ids)
    assert max(leak) > 0.85 and max(healthy) < 0.7  # the leak's memory climbs; the hotfix's does not


ATTACK = "[Re-login](http://127.0.0.1:9/phish) ![t](http://127.0.0.1:9/t.png)"


def test_deep_link_parameters_are_escaped_on_the_pages(app_env, paused_leak):
    """The issue-12 attack through both deep links: the Markdown each page sends is the escaped
    text (the browser half is tests/reliability/test_browser_markdown.py)."""
    at = make_app(page="deployments")
    at.query_params["deployment"] = ATTACK
    at.run()
    [warning] = [w.value for w in at.warning]
    assert warning == f"Deployment {md_escape(ATTACK)} not found."
    at = make_app(page="executions")
    at.query_params["execution"] = ATTACK
    at.run()
    [error] = [e.value for e in at.error]
    assert error == md_escape(f"execution {ATTACK}: execution {ATTACK} not found")
    assert plain(error) == f"execution {ATTACK}: execution {ATTACK} not found"


def test_the_audit_download_goes_through_the_formula_guard(app_env, paused_leak, engine, monkeypatch):
    from console.presentation import tables

    seen = []
    real = tables.csv_bytes
    monkeypatch.setattr(tables, "csv_bytes", lambda frame: seen.append(frame) or real(frame))
    at = make_app("alice", "approver", "approvals")
    assert not at.exception
    assert [d.key for d in at.get("download_button")] == ["approvals_csv"]
    assert len(seen) == 1 and list(seen[0].columns) == ["seq", "at", "actor", "event", "subject", "detail"]


def test_settings_page_hides_credentials_in_every_url(app_env, tmp_path, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    services = tmp_path / "services.yaml"
    services.write_text(
        "services:\n  demo-service:\n    environment: live-demo\n"
        "    prometheus: {url: 'http://127.0.0.1:9/prom?token=pr0m-tok'}\n"
        "    logs: {type: jsonl, path: demo.log}\n"
        "    executor: {type: webhook, url: 'https://hook:h00k-pw@127.0.0.1:9/x?sig=h00k-sig'}\n"
    )
    monkeypatch.setenv("KESTRA_URL", f"http://admin:k3stra-pw@127.0.0.1:{port}/?token=k3stra-tok")
    monkeypatch.setenv("KESTRA_TIMEOUT_S", "0.3")
    monkeypatch.setenv("LLM_BASE_URL", "https://k:llm-pw@llm.example/v1?api_key=llm-key")
    monkeypatch.setenv("CONSOLE_SERVICES_FILE", str(services))
    monkeypatch.setenv("CONSOLE_SECRETS", str(write_users(tmp_path / "secrets.toml", ada="admin")))
    at = signed_in_app("ada", page="settings")
    assert not at.exception, at.exception
    table = next(df.value for df in at.dataframe if "field" in df.value)
    values = dict(zip(table["field"], table["value"], strict=True))
    assert values["kestra_url"] == f"http://***@127.0.0.1:{port}/?token=***"
    assert values["llm_base_url"] == "https://***@llm.example/v1?api_key=***"
    services_table = next(df.value for df in at.dataframe if "executor" in df.value)
    assert list(services_table["prometheus"]) == ["http://127.0.0.1:9/prom?token=***"]
    assert list(services_table["executor"]) == ["webhook: https://***@127.0.0.1:9/x?sig=***"]
    rendered = " ".join(df.value.to_csv() for df in at.dataframe)
    for kind in ("markdown", "caption", "text", "error", "warning", "info", "code"):
        rendered += " ".join(str(e.value) for e in getattr(at, kind))
    for secret in (
        "k3stra-pw",
        "k3stra-tok",
        "llm-pw",
        "llm-key",
        "pr0m-pw",
        "pr0m-tok",
        "h00k-pw",
        "h00k-sig",
    ):
        assert secret not in rendered, secret


def test_pages_a_differently_spelled_name_is_the_same_person(app_env, engine):
    """Through the pages: "Bob " cannot approve bob's request, and "Alice " is not a second
    approver after alice (the service normalises whatever the page sends)."""
    from console.loop.steps import load_scenario

    own = engine.launch(load_scenario("memory-leak", app_env), triggered_by="bob")
    assert engine.wait(own, timeout=60).state == State.PAUSED
    own_id = engine.store.approvals.for_execution(own)["id"]
    at = make_app("Bob ", "admin", "approvals")
    assert at.button(key=f"approve_{own_id}").disabled
    crafted_reject(at, own_id)
    assert any("cannot approve your own request" in e for e in texts(at, "error")), texts(at, "error")
    assert engine.store.approvals.votes(own_id) == []

    critical = engine.run_sync(scenario="database-outage-before-deploy", triggered_by="seed", timeout=60)
    critical_id = engine.store.approvals.for_execution(critical.id)["id"]
    first = make_app("alice", "approver", "approvals")
    first.button(key=f"approve_{critical_id}").click().run()
    again = make_app("ALICE ", "approver", "approvals")
    assert again.button(key=f"approve_{critical_id}").disabled  # the bar knows alice voted
    crafted_reject(again, critical_id)  # the service knows it too
    assert any("already voted" in w for w in texts(again, "warning")), texts(again, "warning")
    assert engine.store.approvals.get(critical_id)["status"] == "pending"
    assert [v["actor"] for v in engine.store.approvals.votes(critical_id)] == ["alice"]
