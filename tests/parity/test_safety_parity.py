"""The rules of acting on the world as it is now hold on both engines, through the shared steps and
the one approval service: the same watched deployment of demo-service (its decision made from the
memory-leak evidence; its deployer the in-process stand-in of the demo deployer's API) run on the
embedded engine and on Kestra (the fake server, the real client, the mirror):

- approved, the rollback goes to the revision history's known-good version, never to the
  announcement's known-bad ``previous_version``, with the expected version in the call;
- approved after another deploy, it is superseded: nothing runs, the deployer's history is unchanged,
  the approval and the deployment say so.

(On Kestra the plan leaves the target to the approval, whose tasks do not read the console's store;
the embedded engine's plan already names it. The approval names it on both.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from console.access.approvals import ApprovalService, Superseded
from console.access.auth import Identity, Role
from console.domain.executions import State
from console.domain.models import parse_time
from console.engines.kestra.backend import KestraBackend
from console.engines.kestra.mirror import KestraMirror
from console.loop import revisions, step_io, steps
from console.loop.scenarios import load_scenario_document
from console.runtime import embedded_runtime
from console.settings import Secret, Settings
from console.storage import Store
from tests.demo_service.test_live import wait_for
from tests.executors.servers import FakeDeployer, run_deployer
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra

pytestmark = [pytest.mark.parity, pytest.mark.safety]
TOKEN = "parity-deployer-token-0123456789"
BOB = Identity("bob", Role.APPROVER, source="password")
WATCHED = {
    "ended": "early",
    "reason": "hard guard",
    "evaluations": 4,
    "elapsed_s": 9.0,
    "notes": [],
    "links": {},
}


def watched_collect(data: dict[str, Any], settings: Settings, **_: Any) -> dict[str, Any]:
    """collect for a watched live deployment without Prometheus: the memory-leak evidence moved to
    the announced deploy, the deployment as announced (its ``previous_version`` a hint)."""
    dep = step_io.live_deployment(data) or {}
    doc = {
        k: v for k, v in load_scenario_document("memory-leak").items() if k not in ("scenario", "post_action")
    }
    delta = parse_time(str(dep["deployed_at"])) - parse_time(doc["deployment"]["deployed_at"])
    doc = steps.shift_document(doc, delta)
    doc["deployment"] = {**doc["deployment"], **{k: v for k, v in dep.items() if v}}
    return step_io.CollectOutput(doc, WATCHED).to_dict()


def services_yaml(path: Path, deployer: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "services:\n  demo-service:\n    environment: live-demo\n"
        f"    logs: {{type: jsonl, path: '{path.parent / 'none.log'}'}}\n"
        f"    executor: {{type: demo-service, url: '{deployer}', token_env: DEMO_DEPLOYER_TOKEN, "
        "verify_timeout_s: 2}\n",
        encoding="utf-8",
    )
    (path.parent / "none.log").write_text("", encoding="utf-8")
    return path


def seed_history(store: Store) -> None:
    events = [
        revisions.event("demo-service", "v1.0.0", revisions.VERIFIED_HEALTHY, "2026-11-29T10:02:00Z",
                        "measured", source="loop", execution_id="old-1",
                        window=("2026-11-29T10:01:15Z", "2026-11-29T10:02:00Z")),
        revisions.event("demo-service", "v1.5.0-crashloop", revisions.CRASH_LOOPING, "2026-11-29T10:05:00Z",
                        "not ready · 8 crash restarts", source="probe", execution_id="old-2"),
    ]  # fmt: skip
    with store.db.write() as conn:
        store.revisions.add_in(conn, events)


def announced(record: dict[str, Any]) -> dict[str, Any]:
    """The deploy as a CI token announced it: a forged, known-bad previous version."""
    return {
        "id": record["id"],
        "service": "demo-service",
        "version": record["version"],
        "previous_version": "v1.5.0-crashloop",
        "deployed_at": record["at"],
        "deployed_by": "alice",
    }


@contextmanager
def engine(kind: str, root: Path, deployer: FakeDeployer) -> Iterator[dict[str, Any]]:
    """The parts of one engine: launch(deployment) -> id, state(id), approvals, store."""
    services = services_yaml(root / "services.yaml", deployer.url)
    if kind == "embedded":
        settings = Settings(data_dir=root / "data", services_file=services)
        runtime = embedded_runtime(settings, expiry_timer_s=None)
        seed_history(runtime.store)
        try:
            yield {
                "launch": lambda d: runtime.engine.launch_deployment(
                    d, triggered_by="alice", source="deployer"
                ),
                "state": lambda i: runtime.engine.get_execution(i).state,
                "outputs": lambda i, task: runtime.engine.get_execution(i).task_run(task).outputs,
                "approvals": runtime.approvals,
                "store": runtime.store,
                "sync": lambda: None,
            }
        finally:
            runtime.close()
        return
    fake = FakeKestra(
        username=USER, password=PASSWORD, settings=Settings(data_dir=root / "fake", services_file=services)
    )
    fake.start()
    fake.deploy_dir(FLOWS_DIR)
    settings = Settings(
        data_dir=root / "data",
        services_file=services,
        kestra_url=fake.url,
        kestra_username=USER,
        kestra_password=Secret(PASSWORD),
    )
    backend = KestraBackend(settings)
    store = Store(settings.db_path)
    seed_history(store)
    mirror = KestraMirror(store, backend, settings)
    approvals = ApprovalService(store, backend, settings, refresh=mirror.refresh)

    def outputs(execution_id: str, task: str) -> dict[str, Any]:
        run = backend.get_execution(execution_id).task_run(task)
        return (run.outputs or {}) if run is not None else {}

    try:
        yield {
            "launch": lambda d: backend.launch_deployment(d, triggered_by="alice", source="deployer"),
            "state": lambda i: backend.get_execution(i).state,
            "outputs": outputs,
            "approvals": approvals,
            "store": store,
            "sync": mirror.sync,
        }
    finally:
        store.close()
        backend.close()
        fake.stop()


def paused_approval(parts: dict[str, Any], execution_id: str) -> dict[str, Any]:
    wait_for(lambda: parts["state"](execution_id) == State.PAUSED, 60, what="the pause")
    return wait_for(
        lambda: next((a for a in parts["approvals"].pending() if a["execution_id"] == execution_id), None),
        60,
        what="the approval",
    )


def finished(parts: dict[str, Any], execution_id: str) -> dict[str, Any]:
    wait_for(lambda: parts["state"](execution_id) == State.SUCCESS, 60, what="the end of the run")
    parts["sync"]()
    return parts["store"].deployments.for_execution(execution_id)


def run_case(kind: str, root: Path, case: str) -> dict[str, Any]:
    with run_deployer(TOKEN, version="v1.0.0", previous_version=None) as deployer:
        record = deployer.deploy("v1.2.0-leak")
        with engine(kind, root, deployer) as parts:
            execution_id = parts["launch"](announced(record))
            approval = paused_approval(parts, execution_id)
            target = parts["approvals"].rollback_choice(approval)
            out: dict[str, Any] = {
                "target": target.text if target else None,
                "notes": list(target.notes) if target else [],
            }
            if case == "superseded":
                deployer.deploy("v1.1.0")
                with pytest.raises(Superseded) as refused:
                    parts["approvals"].vote(approval["id"], BOB, True, "")
                out["refusal"] = str(refused.value).split(" at ")[0]
            else:
                parts["approvals"].vote(approval["id"], BOB, True, "leak confirmed")
            row = finished(parts, execution_id)
            out["status"] = row["status"]
            out["running"] = row["running_version"]
            out["approval"] = parts["approvals"].get(approval["id"])["status"]
            out["posts"] = [
                {k: v for k, v in p.items() if k in ("to", "expected_version")}
                for p in deployer.posts("/rollback")
            ]
            out["kinds"] = [r["kind"] for r in deployer.records]
            known = revisions.revisions(parts["store"].revisions.events("demo-service"))
            out["history"] = {r.version: r.status for r in known}  # the Deployments page's table
            events = {e["event"] for e in parts["store"].audit.trail(limit=100)}
            out["audited"] = sorted(events & {"approval.rollback_target", "approval.superseded"})
            return out


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    root = tmp_path_factory.mktemp("safety-parity")
    patch = pytest.MonkeyPatch()
    patch.setenv("DEMO_DEPLOYER_TOKEN", TOKEN)
    patch.setattr(steps, "collect", watched_collect)
    patch.setitem(steps.STEPS, "collect", watched_collect)
    try:
        return {
            (kind, case): run_case(kind, root / f"{kind}-{case}", case)
            for kind in ("embedded", "kestra")
            for case in ("approved", "superseded")
        }
    finally:
        patch.undo()


def test_approved_the_rollback_goes_to_the_known_good_version_on_both_engines(results):
    embedded, kestra = results[("embedded", "approved")], results[("kestra", "approved")]
    assert embedded == kestra
    assert embedded["target"].startswith("v1.0.0: healthy, verified 10:02 for 45 s")
    assert embedded["notes"][0].startswith("the announced previous version v1.5.0-crashloop is known-bad")
    assert embedded["posts"] == [{"to": "v1.0.0", "expected_version": "v1.2.0-leak"}]
    assert embedded["kinds"] == ["deploy", "rollback"]
    assert (embedded["status"], embedded["running"], embedded["approval"]) == (
        "rolled back",
        "v1.0.0",
        "approved",
    )
    assert embedded["audited"] == ["approval.rollback_target"]
    assert embedded["history"]["v1.2.0-leak"] == revisions.KNOWN_BAD  # rolled back, on both engines


def test_approved_after_another_deploy_it_is_superseded_on_both_engines(results):
    embedded, kestra = results[("embedded", "superseded")], results[("kestra", "superseded")]
    assert embedded == kestra
    assert embedded["refusal"].startswith("this approval was superseded")
    assert embedded["posts"] == [] and embedded["kinds"] == ["deploy", "deploy"]  # nothing rolled back
    assert (embedded["status"], embedded["approval"]) == ("superseded", "superseded")
    assert embedded["running"] == "v1.2.0-leak"  # the row's version: nothing the loop did changed it
    assert embedded["audited"] == ["approval.superseded"]
