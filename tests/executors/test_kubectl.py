"""The kubectl executor: the exact argv of every action, through a recording stand-in kubectl on PATH."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.executors import ActionRequest, KubectlExecutor
from console.executors.kubectl import mask_env_values, parse_quantity
from tests.executors.kubectl_standin import FakeKubectl, install

NS, DEPLOY = "shop", "api"
TARGET = f"deployment/{DEPLOY}"
STATUS = ["rollout", "status", TARGET, "-n", NS, "--timeout=300s"]


@pytest.fixture
def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    """A recording ``kubectl`` placed first on PATH (a real one may be installed further down)."""
    return install(tmp_path, monkeypatch)


def kubectl(**extra: object) -> KubectlExecutor:
    return KubectlExecutor.from_config({"type": "kubectl", "namespace": NS, "deployment": DEPLOY, **extra})


def request(action: str, **params: object) -> ActionRequest:
    return ActionRequest(action, "payment-api", params=dict(params), execution_id="e1", approved_by="bob")


def template(tag: str) -> dict:
    return {"spec": {"containers": [{"name": "app", "image": f"registry.example/shop/api:{tag}@sha256:ab"}]}}


def deployment_json(tag: str, *, revision: str = "7", ready: int = 2, updated: int = 2) -> str:
    return json.dumps(
        {
            "metadata": {"generation": 9, "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}}, "template": template(tag)},
            "status": {
                "observedGeneration": 9,
                "replicas": 2,
                "readyReplicas": ready,
                "updatedReplicas": updated,
            },
        }
    )


def replica_sets_json(*revisions: tuple[int, str]) -> str:
    items = [
        {
            "metadata": {"annotations": {"deployment.kubernetes.io/revision": str(n)}},
            "spec": {"template": template(t)},
        }
        for n, t in revisions
    ]
    return json.dumps({"items": items})


def pods_json(*restarts: int) -> str:
    items = [{"status": {"containerStatuses": [{"name": "app", "restartCount": n}]}} for n in restarts]
    return json.dumps({"items": items})


GET_DEPLOYMENT = ["get", TARGET, "-n", NS, "-o", "json"]
GET_RS = ["get", "rs", "-n", NS, "-l", "app=api", "-o", "json"]


def test_rollback_goes_to_the_newest_revision_running_the_target_version(fake_kubectl: FakeKubectl) -> None:
    """Never kubectl's bare "previous revision" (it may be the known-bad one): the loop's target
    version is looked up among the Deployment's ReplicaSets."""
    fake_kubectl.on("get", TARGET, stdout=deployment_json("v1.3.0-slow"))
    fake_kubectl.on(
        "get", "rs", stdout=replica_sets_json((3, "v1.0.0"), (5, "v1.0.0"), (6, "v1.5.0-crashloop"))
    )
    fake_kubectl.on("undo", stdout="deployment.apps/api rolled back\n")
    fake_kubectl.on("status", stdout='Waiting for rollout...\ndeployment "api" successfully rolled out\n')
    result = kubectl().run(request("rollback_deployment", to_version="v1.0.0"))
    undo = ["rollout", "undo", TARGET, "-n", NS, "--to-revision=5"]
    assert fake_kubectl.calls() == [GET_DEPLOYMENT, GET_RS, undo, STATUS]
    assert result.status == "done", result.detail
    assert result.label == "rolled back"
    assert result.changed and not result.dry_run
    assert result.detail == (
        f'{TARGET} in {NS} rolled back to v1.0.0 (revision 5); deployment "api" successfully rolled out'
    )
    assert result.commands[2:] == (
        "kubectl rollout undo deployment/api -n shop --to-revision=5",
        "kubectl rollout status deployment/api -n shop --timeout=300s",
    )


def test_rollback_without_a_target_or_to_a_version_no_revision_runs_is_refused(
    fake_kubectl: FakeKubectl,
) -> None:
    refused = kubectl().run(request("rollback_deployment"))
    assert refused.status == "refused" and refused.detail.startswith("no rollback target")
    fake_kubectl.on("get", TARGET, stdout=deployment_json("v1.3.0-slow"))
    fake_kubectl.on("get", "rs", stdout=replica_sets_json((6, "v1.5.0-crashloop"), (7, "v1.3.0-slow")))
    missing = kubectl().run(request("rollback_deployment", to_version="v1.0.0"))
    assert missing.status == "refused"
    assert (
        missing.detail
        == f"no revision of {TARGET} runs v1.0.0 (revisions 6: v1.5.0-crashloop, 7: v1.3.0-slow)"
    )
    assert not any("undo" in argv for argv in fake_kubectl.calls())


def test_probe_reads_the_image_tag_readiness_revision_and_restarts(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.on("get", TARGET, stdout=deployment_json("v1.5.0-crashloop", revision="6", ready=0))
    fake_kubectl.on("get", "pods", stdout=pods_json(3, 2))
    state = kubectl(container="app").probe("payment-api")
    assert (state.version, state.revision, state.ready, state.restarts, state.replicas) == (
        "v1.5.0-crashloop",
        "6",
        False,
        5,
        2,
    )
    assert state.crash_looping and not state.deploying
    assert state.source == f"kubectl get {TARGET} -n {NS} -o json"
    assert fake_kubectl.calls() == [GET_DEPLOYMENT, ["get", "pods", "-n", NS, "-l", "app=api", "-o", "json"]]


def test_a_rollout_under_way_is_not_ready_and_deploying(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.on("get", TARGET, stdout=deployment_json("v1.0.0", ready=2, updated=1))
    fake_kubectl.on("get", "pods", stdout=pods_json(0, 0))
    state = kubectl().probe("payment-api")
    assert state.deploying and state.ready is False and state.restarts == 0


def test_a_probe_that_cannot_read_says_why(fake_kubectl: FakeKubectl) -> None:
    from console.executors import ProbeError

    fake_kubectl.on("get", exit=1, stderr='Error from server (NotFound): deployments.apps "api" not found\n')
    with pytest.raises(
        ProbeError, match="cannot read deployment/api in shop: kubectl get deployment/api exited 1"
    ):
        kubectl().probe("payment-api")


def test_rollback_to_a_revision_with_context_and_kubeconfig(fake_kubectl: FakeKubectl) -> None:
    executor = kubectl(context="prod-eu", kubeconfig="/etc/kube/config", rollout_timeout_s=90)
    result = executor.run(request("rollback_deployment", revision=7))
    globals_ = ["--context=prod-eu", "--kubeconfig=/etc/kube/config"]
    assert fake_kubectl.calls() == [
        ["rollout", "undo", TARGET, "-n", NS, "--to-revision=7", *globals_],
        ["rollout", "status", TARGET, "-n", NS, "--timeout=90s", *globals_],
    ]
    assert result.detail.startswith(f"{TARGET} in {NS} rolled back to revision 7;")


@pytest.mark.parametrize("revision", [0, -1, "three", True, 1.5])
def test_rollback_with_a_bad_revision_is_refused(fake_kubectl: FakeKubectl, revision: object) -> None:
    result = kubectl().run(request("rollback_deployment", revision=revision))
    assert result.status == "refused"
    assert result.detail.startswith("rollback_deployment: params.revision must be a whole number ≥ 1")
    assert fake_kubectl.calls() == []


def test_restart_argv(fake_kubectl: FakeKubectl) -> None:
    result = kubectl().run(request("restart_pod"))
    assert fake_kubectl.calls() == [["rollout", "restart", TARGET, "-n", NS], STATUS]
    assert result.label == "restarted"


def test_scale_argv(fake_kubectl: FakeKubectl) -> None:
    result = kubectl().run(request("scale_deployment", replicas=4))
    assert fake_kubectl.calls() == [["scale", TARGET, "-n", NS, "--replicas=4"], STATUS]
    assert result.label == "scaled to 4 replicas"
    assert result.evidence is not None and result.evidence["replicas"] == 4


@pytest.mark.parametrize(
    ("params", "shown"),
    [
        ({}, "none given"),
        ({"replicas": 0}, "got 0"),
        ({"replicas": 9}, "got 9"),
        ({"replicas": "many"}, "got 'many'"),
        ({"replicas": True}, "got True"),
    ],
)
def test_scale_without_a_valid_replica_count_is_refused(
    fake_kubectl: FakeKubectl, params: dict, shown: str
) -> None:
    result = kubectl(max_replicas=8).run(request("scale_deployment", **params))
    assert result.status == "refused"
    assert result.detail == f"scale_deployment needs params.replicas, a whole number from 1 to 8 ({shown})"
    assert result.label.startswith("scale refused: ")
    assert fake_kubectl.calls() == []


def test_increase_resources_argv(fake_kubectl: FakeKubectl) -> None:
    result = kubectl(container="app").run(
        request("increase_resources", limits={"memory": "1Gi", "cpu": "1"}, requests={"memory": "512Mi"})
    )
    assert fake_kubectl.calls() == [
        [
            "set",
            "resources",
            TARGET,
            "-n",
            NS,
            "-c",
            "app",
            "--limits=cpu=1,memory=1Gi",
            "--requests=memory=512Mi",
        ],
        STATUS,
    ]
    assert result.status == "done", result.detail
    assert result.label == "resources increased"
    assert "limits cpu=1,memory=1Gi, requests memory=512Mi" in result.detail


def test_increase_resources_without_container_and_only_limits(fake_kubectl: FakeKubectl) -> None:
    kubectl().run(request("increase_resources", limits={"memory": "768Mi"}))
    assert fake_kubectl.calls()[0] == ["set", "resources", TARGET, "-n", NS, "--limits=memory=768Mi"]


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({}, "needs params.limits or params.requests"),
        ({"limits": "1Gi"}, "params.limits must be an object"),
        (
            {"limits": {"memory": "lots"}},
            "params.limits.memory is not a positive Kubernetes quantity: 'lots'",
        ),
        ({"limits": {"memory": "-1Gi"}}, "is not a positive Kubernetes quantity"),
        ({"limits": {"memory": "0"}}, "is not a positive Kubernetes quantity"),
        ({"limits": {"memory": "1Gi; rm -rf /"}}, "is not a positive Kubernetes quantity"),
        ({"limits": {"gpu": "1"}}, "params.limits.gpu is not one of cpu, memory"),
        ({"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}, "the cpu request 1 is above its limit 500m"),
    ],
)
def test_increase_resources_with_bad_params_is_refused(
    fake_kubectl: FakeKubectl, params: dict, why: str
) -> None:
    result = kubectl().run(request("increase_resources", **params))
    assert result.status == "refused"
    assert why in result.detail
    assert fake_kubectl.calls() == []


def test_quantities() -> None:
    assert parse_quantity("512Mi") == 512 * 2**20
    assert parse_quantity("500m") == parse_quantity("0.5")
    assert parse_quantity("1e3") == 1000
    assert parse_quantity("1.5G") == 1_500_000_000
    for bad in ("", "Mi", "1.2.3", "1 Gi", "-1", "1GiB", "1e"):
        assert parse_quantity(bad) is None, bad


def test_collect_diagnostics_argv_and_bounded_evidence(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.on("describe", stdout="Name: api\n" + "x" * 40000 + "\nEvents: <none>\n")
    fake_kubectl.on("events", stdout="LAST SEEN TYPE REASON\n1m Warning OOMKilled\n2m Warning BackOff\n")
    result = kubectl(dry_run="server").run(request("collect_diagnostics"))  # reads run also in dry-run mode
    assert fake_kubectl.calls() == [
        ["describe", TARGET, "-n", NS],
        ["get", "events", "-n", NS, "--sort-by=.lastTimestamp"],
    ]
    assert result.status == "done", result.detail
    assert not result.dry_run
    assert result.detail == f"captured kubectl describe of {TARGET} and 2 events in {NS}"
    assert result.evidence is not None
    assert len(result.evidence["describe"]) == 16000
    assert result.evidence["describe"].endswith("Events: <none>\n")  # the end is kept
    assert "OOMKilled" in result.evidence["events"]


def test_failover_database_is_refused_and_notify_runs_nothing(fake_kubectl: FakeKubectl) -> None:
    executor = kubectl()
    assert not executor.supports("failover_database")
    refused = executor.run(request("failover_database"))
    assert refused.status == "refused"
    assert refused.detail == (
        f"payment-api cannot failover_database: a database failover is not a change to {TARGET} "
        "(configure a webhook executor for it)"
    )
    notified = executor.run(request("notify_only"))
    assert notified.label == "notify only: nothing changed"
    assert fake_kubectl.calls() == []


def test_non_zero_exit_is_a_failed_result_with_stderrs_last_line(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.on(
        "undo", exit=1, stderr='warning: something\nerror: no rollout history found for deployment "api"\n'
    )
    result = kubectl().run(request("rollback_deployment", revision=3))
    assert result.status == "failed"
    assert (
        result.detail == 'kubectl rollout undo exited 1: error: no rollout history found for deployment "api"'
    )
    assert result.label == f"rollback failed: {result.detail}"
    assert "rolled back" not in result.label
    # no status wait after a failure
    assert fake_kubectl.calls() == [["rollout", "undo", TARGET, "-n", NS, "--to-revision=3"]]


def test_a_rollout_that_does_not_complete_is_done_and_says_what_did_not_follow(
    fake_kubectl: FakeKubectl,
) -> None:
    """The undo was applied: the change happened, so the result is never "failed"; the rollout's
    problem is said, and verify measures the service."""
    fake_kubectl.on("status", exit=1, stderr='error: deployment "api" exceeded its progress deadline\n')
    result = kubectl().run(request("rollback_deployment", revision=3))
    assert result.status == "done"
    assert result.detail == (
        f"{TARGET} in {NS} rolled back to revision 3; but kubectl rollout status exited 1: error: deployment "
        '"api" exceeded its progress deadline (kubectl rollout undo was applied)'
    )


def test_output_kept_is_bounded(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.on("undo", exit=2, stderr="e" * 10000 + "\nerror: the last line\n")
    result = kubectl().run(request("rollback_deployment", revision=3))
    assert result.detail == "kubectl rollout undo exited 2: error: the last line"
    assert result.evidence is not None
    assert len(result.evidence["kubectl"][0]["stderr"]) == 2000


def test_a_changing_command_that_times_out_is_unknown_a_read_that_times_out_failed(
    fake_kubectl: FakeKubectl,
) -> None:
    fake_kubectl.on("undo", sleep=5)
    fake_kubectl.on("describe", sleep=5)
    result = kubectl(command_timeout_s=0.5).run(request("rollback_deployment", revision=3))
    assert result.status == "unknown"
    assert (
        result.detail == "kubectl rollout undo did not finish within 0.5 s: the change may have been applied"
    )
    read = kubectl(command_timeout_s=0.5).run(request("collect_diagnostics"))
    assert read.status == "failed" and read.detail == "kubectl describe did not finish within 0.5 s"


def test_missing_binary(fake_kubectl: FakeKubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = kubectl(kubectl=str(tmp_path / "nowhere" / "kubectl")).run(
        request("rollback_deployment", revision=2)
    )
    assert result.status == "failed"
    assert result.detail == (
        f"kubectl not found: '{tmp_path}/nowhere/kubectl' is not at that path "
        "(set executor.kubectl to its path)"
    )
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    on_path = kubectl().run(request("restart_pod"))
    assert on_path.detail == "kubectl not found: 'kubectl' is not on PATH (set executor.kubectl to its path)"
    assert fake_kubectl.calls() == []


def test_configured_binary_path_is_used(fake_kubectl: FakeKubectl) -> None:
    result = kubectl(kubectl=str(fake_kubectl.bin_dir / "kubectl")).run(request("restart_pod"))
    assert result.status == "done", result.detail
    assert result.commands[0] == f"{fake_kubectl.bin_dir}/kubectl rollout restart deployment/api -n shop"


def test_server_dry_run_rollback(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.on("undo", stdout="deployment.apps/api rolled back (server dry run)\n")
    result = kubectl(dry_run="server").run(request("rollback_deployment", revision=4))
    assert fake_kubectl.calls() == [
        ["rollout", "undo", TARGET, "-n", NS, "--to-revision=4", "--dry-run=server"]
    ]  # no status wait
    assert result.status == "done"
    assert result.dry_run and not result.changed
    assert result.label == "rollback (server dry run)"
    assert result.detail == (
        f"server dry run accepted for {TARGET} in {NS}: deployment.apps/api rolled back (server dry run); "
        "nothing changed"
    )


def test_server_dry_run_scale_and_resources(fake_kubectl: FakeKubectl) -> None:
    executor = kubectl(dry_run="server")
    scaled = executor.run(request("scale_deployment", replicas=3))
    resized = executor.run(request("increase_resources", limits={"memory": "1Gi"}))
    assert fake_kubectl.calls() == [
        ["scale", TARGET, "-n", NS, "--replicas=3", "--dry-run=server"],
        ["set", "resources", TARGET, "-n", NS, "--limits=memory=1Gi", "--dry-run=server"],
    ]
    assert (scaled.label, resized.label) == ("scale (server dry run)", "resource increase (server dry run)")


def test_server_dry_run_restart_sends_the_restart_patch(fake_kubectl: FakeKubectl) -> None:
    """`kubectl rollout restart` has no --dry-run: the dry run sends the patch it would send."""
    result = kubectl(dry_run="server").run(request("restart_pod"))
    [argv] = fake_kubectl.calls()
    assert argv[:6] == ["patch", TARGET, "-n", NS, "--type=merge", "-p"]
    assert argv[7:] == ["--dry-run=server"]
    annotations = json.loads(argv[6])["spec"]["template"]["metadata"]["annotations"]
    assert list(annotations) == ["kubectl.kubernetes.io/restartedAt"]
    assert result.label == "restart (server dry run)"


def test_server_dry_run_refused_by_the_api_server_is_a_failed_dry_run(fake_kubectl: FakeKubectl) -> None:
    fake_kubectl.on(
        "scale", exit=1, stderr='Error from server (Forbidden): deployments.apps "api" is forbidden\n'
    )
    result = kubectl(dry_run="server").run(request("scale_deployment", replicas=3))
    assert result.status == "failed"
    assert result.label == (
        'scale failed: kubectl scale exited 1: Error from server (Forbidden): deployments.apps "api" is '
        "forbidden (server dry run)"
    )


def test_describe_shows_the_exact_commands(fake_kubectl: FakeKubectl) -> None:
    executor = kubectl(context="prod")
    assert executor.describe(request("rollback_deployment", to_version="v1.0.0")) == (
        "kubectl rollout undo deployment/api -n shop '--to-revision=<the revision running v1.0.0>' "
        "--context=prod ; then kubectl rollout status deployment/api -n shop --timeout=300s --context=prod"
    )
    assert executor.describe(request("scale_deployment")).startswith("refused: scale_deployment needs")
    assert fake_kubectl.calls() == []


def test_describe_evidence_masks_literal_secret_env_values(fake_kubectl: FakeKubectl) -> None:
    describe = (
        "Name: api\n"
        "    Environment:\n"
        "      LOG_LEVEL:          debug\n"
        "      DB_PASSWORD:        pl41n-t3xt-pw\n"
        "      STRIPE_API_KEY:     sk_live_abc\n"
        "      GITHUB_TOKEN:       <set to the key 'token' in secret 'gh'>  Optional: false\n"
    )
    fake_kubectl.on("describe", stdout=describe)
    result = kubectl().run(request("collect_diagnostics"))
    assert result.evidence is not None
    kept = result.evidence["describe"]
    assert "pl41n-t3xt-pw" not in kept and "sk_live_abc" not in kept
    assert "DB_PASSWORD:        ***" in kept
    assert "LOG_LEVEL:          debug" in kept
    assert "<set to the key 'token' in secret 'gh'>" in kept
    assert mask_env_values("  SecretName:  my-tls\n") == "  SecretName:  my-tls\n"
