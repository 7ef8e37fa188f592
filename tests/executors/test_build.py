"""Choosing an executor from the services config: every problem on its own clear line."""

from __future__ import annotations

import pytest
import yaml

from console.executors import (
    EXECUTOR_TYPES,
    DemoServiceExecutor,
    Executor,
    ExecutorConfigError,
    KubectlExecutor,
    SimulatedExecutor,
    WebhookExecutor,
    build_executor,
)


def problems(config: object, **kw: str) -> list[str]:
    with pytest.raises(ExecutorConfigError) as info:
        build_executor(config, **kw)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert str(info.value) == "; ".join(info.value.problems)
    return info.value.problems


def test_no_executor_is_simulated() -> None:
    assert isinstance(build_executor(None), SimulatedExecutor)
    assert isinstance(build_executor({"type": "simulated"}), SimulatedExecutor)


def test_the_contracts_example_builds() -> None:
    """The services config of CONTRACTS.md, read as YAML."""
    doc = yaml.safe_load(
        """
services:
  demo-service:
    environment: live-demo
    executor:
      type: demo-service
      url: http://127.0.0.1:8700
      token_env: DEMO_DEPLOYER_TOKEN
"""
    )
    executor = build_executor(doc["services"]["demo-service"]["executor"])
    assert isinstance(executor, DemoServiceExecutor)
    assert (executor.url, executor.token_env, executor.verify_timeout_s) == (
        "http://127.0.0.1:8700",
        "DEMO_DEPLOYER_TOKEN",
        10.0,
    )


def test_kubectl_and_webhook_build_with_their_options() -> None:
    kube = build_executor(
        yaml.safe_load(
            """
type: kubectl
namespace: shop
deployment: payment-api
context: prod-eu
kubeconfig: /etc/kube/config
container: app
dry_run: server
rollout_timeout_s: 120
kubectl: /usr/local/bin/kubectl
max_replicas: 12
"""
        )
    )
    assert isinstance(kube, KubectlExecutor)
    assert (kube.namespace, kube.deployment, kube.dry_run, kube.rollout_timeout_s, kube.max_replicas) == (
        "shop",
        "payment-api",
        True,
        120.0,
        12,
    )
    assert (
        build_executor({"type": "kubectl", "namespace": "a", "deployment": "b", "dry_run": False}).dry_run
        is False
    )
    hook = build_executor({"type": "webhook", "url": "https://ci.example.com/hook/", "retries": 0})
    assert isinstance(hook, WebhookExecutor)
    assert (hook.url, hook.retries, hook.token_env, hook.secret_env) == (
        "https://ci.example.com/hook",
        0,
        None,
        None,
    )


def test_unknown_type() -> None:
    assert problems({"type": "kubctl"}) == [
        "executor.type: must be one of simulated, demo-service, kubectl, webhook, got 'kubctl'"
    ]
    assert problems({"url": "http://x"}) == [
        "executor.type: missing (one of simulated, demo-service, kubectl, webhook)"
    ]
    assert problems(["kubectl"], where="services.api.executor") == [
        "services.api.executor: must be a mapping, got a list"
    ]


def test_every_problem_is_listed_once() -> None:
    assert problems(
        {
            "type": "kubectl",
            "namespace": "Shop_NS",
            "dry_run": "client",
            "rollout_timeout_s": -5,
            "max_replicas": 0,
            "replicas": 3,
        }
    ) == [
        "executor.replicas: unknown key for type kubectl (allowed: type, namespace, deployment, context, "
        "kubeconfig, container, dry_run, rollout_timeout_s, command_timeout_s, kubectl, max_replicas)",
        "executor.namespace: must be a Kubernetes namespace name, got 'Shop_NS'",
        "executor.deployment: missing (required for type kubectl)",
        "executor.dry_run: must be one of server, none, got 'client'",
        "executor.rollout_timeout_s: must be a number above 0, at most 3600, got -5",
        "executor.max_replicas: must be a whole number from 1 to 1000, got 0",
    ]


def test_demo_service_and_webhook_problems() -> None:
    assert problems({"type": "demo-service"}) == ["executor.url: missing (required for type demo-service)"]
    assert problems({"type": "demo-service", "url": "ftp://host", "timeout_s": "fast"}) == [
        "executor.url: must be an http(s) URL with a host (http://host:port or https://...), got 'ftp://host'",
        "executor.timeout_s: must be a number above 0, at most 600, got 'fast'",
    ]
    assert problems({"type": "webhook", "url": "http://:80/x", "retries": 9, "backoff_s": -1}) == [
        "executor.url: must be an http(s) URL with a host (http://host:port or https://...), got 'http://:80/x'",
        "executor.retries: must be a whole number from 0 to 5, got 9",
        "executor.backoff_s: must be a number from 0 to 30, got -1",
    ]


def test_a_pasted_secret_is_never_echoed() -> None:
    """token_env must be a variable's name; a token pasted there is refused without repeating it."""
    pasted = "ghp_R3allyS3cret/Token+Value"
    [line] = problems({"type": "webhook", "url": "http://h/x", "token_env": pasted})
    assert line == (
        "executor.token_env: must be the name of an environment variable (letters, digits, _), "
        "never the secret itself"
    )
    lines = problems({"type": "demo-service", "url": "https://user:hunter2@h/x", "foo": 1})
    assert lines[1].startswith("executor.url: credentials in the URL are not allowed")
    assert not any("hunter2" in line for line in lines)
    assert problems({"type": "webhook", "url": "https://user:hunter2@h:99999/x"}) == [
        "executor.url: not a valid URL (expected http://host:port or https://...)"
    ]
    assert problems({"type": "webhook", "url": "ftp://h/x?sig=abc", "token": "s3cr3t"}) == [
        "executor.token: secrets are never written in this file: put it in an environment variable and "
        "give that variable's name (token_env / password_env)",
        "executor.url: must be an http(s) URL with a host (http://host:port or https://...), "
        "got 'ftp://h/x?sig=***'",
    ]


def test_simulated_takes_no_options() -> None:
    assert problems({"type": "simulated", "url": "http://x"}) == [
        "executor.url: unknown key for type simulated (allowed: type)"
    ]


MINIMAL = {
    "simulated": {},
    "demo-service": {"url": "http://127.0.0.1:8700"},
    "kubectl": {"namespace": "shop", "deployment": "api"},
    "webhook": {"url": "https://hooks.example.com/devops"},
}


def test_every_type_builds_an_executor_of_that_name() -> None:
    assert set(MINIMAL) == set(EXECUTOR_TYPES)
    for kind, options in MINIMAL.items():
        executor = build_executor({"type": kind, **options})
        assert isinstance(executor, Executor)
        assert executor.name == kind
        assert executor.simulated is (kind == "simulated")
