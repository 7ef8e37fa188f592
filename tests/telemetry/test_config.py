"""The services file: a good file in full, every kind of bad one, and the "no source" errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.settings import Settings, load_settings
from console.telemetry.config import (
    JsonlLogsConfig,
    LokiLogsConfig,
    load_services,
    resolve_secret,
    service_config,
)
from console.telemetry.errors import ConfigError, NoSourceConfigured
from console.telemetry.prometheus import PrometheusSource

GOOD = """
services:
  demo-service:
    environment: live-demo
    windows: {baseline_s: 20, verify_s: 30}
    prometheus:
      url: http://127.0.0.1:9090/
      profile: demo-service
      selector: '{service="demo-service"}'
      queries: {pod_restarts: null, queue_depth: 'max(queue_depth{{selector}})'}
      scrape_interval_s: 1
      token_env: PROM_TOKEN
    logs:
      type: jsonl
      path: logs/demo-service.log
      max_lines: 500
    executor:
      type: demo-service
      url: http://127.0.0.1:8700
      token_env: DEMO_DEPLOYER_TOKEN
      anything: the executor validates its own keys
  payments:
    prometheus:
      url: https://prom.example.com/prometheus
      profile: kubernetes
      selector: namespace="shop",pod=~"payments-.*"
      http_selector: namespace="shop",service="payments"
      username: console
      password_env: PROM_PASSWORD
      metrics: [error_rate, latency_p95_ms]
    logs:
      type: loki
      url: https://logs.example.com
      query: '{namespace="shop", app="payments"}'
      tenant: team-a
      token_env: LOKI_TOKEN
      page_size: 500
"""


def test_good_file_reads_into_typed_frozen_config(services_file, tmp_path: Path) -> None:
    path = services_file(GOOD)
    settings = Settings(live_post_action_s=99.0)
    services = load_services(path, settings).services
    demo = services["demo-service"]
    assert demo.environment == "live-demo"
    assert (demo.windows.baseline_s, demo.windows.verify_s, demo.windows.post_action_s) == (20, 30, 99.0)
    prom = demo.prometheus
    assert prom is not None
    assert prom.url == "http://127.0.0.1:9090"  # trailing slash dropped
    assert prom.selector == 'service="demo-service"'  # braces dropped: the template adds them
    assert prom.scrape_interval_s == 1.0 and prom.token_env == "PROM_TOKEN"
    assert prom.queries == {"pod_restarts": None, "queue_depth": "max(queue_depth{{selector}})"}
    assert isinstance(demo.logs, JsonlLogsConfig)
    assert demo.logs.path == tmp_path / "logs" / "demo-service.log"  # relative to the file
    assert demo.logs.max_lines == 500
    assert demo.executor == {
        "type": "demo-service",
        "url": "http://127.0.0.1:8700",
        "token_env": "DEMO_DEPLOYER_TOKEN",
        "anything": "the executor validates its own keys",
    }
    pay = services["payments"]
    assert pay.environment == "production"
    assert pay.windows.baseline_s == settings.live_baseline_s
    assert (
        pay.prometheus is not None and pay.prometheus.http_selector == 'namespace="shop",service="payments"'
    )
    assert pay.prometheus.metrics == ("error_rate", "latency_p95_ms")
    assert isinstance(pay.logs, LokiLogsConfig) and pay.logs.tenant == "team-a" and pay.logs.page_size == 500
    with pytest.raises(AttributeError):
        demo.environment = "x"  # type: ignore[misc]


def test_overrides_drop_and_add_metrics(services_file) -> None:
    demo = load_services(services_file(GOOD)).services["demo-service"]
    assert demo.prometheus is not None
    source = PrometheusSource(demo.prometheus)
    queries = source.queries(step_s=1)
    assert "pod_restarts" not in queries
    assert queries["queue_depth"] == 'max(queue_depth{service="demo-service"})'
    assert queries["error_rate"] == 'service:http_requests_errors:ratio_rate5s{service="demo-service"}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("services: [a, b", "not valid YAML at line"),
        ("- just a list", "(document): must be a mapping, got a list"),
        ("other: 1", "services: missing"),
        (
            "services: {x: {prometheus: {url: 'localhost:9090'}}}",
            "services.x.prometheus.url: must be an http(s) URL with a host "
            "(http://host:port or https://...), got 'localhost:9090'",
        ),
        ("services: {x: {prometheus: {url: 'ftp://h:1'}}}", "prometheus.url: must be an http(s) URL"),
        ("services: {x: {prometheus: {url: 'http://h:x'}}}", "prometheus.url: not a valid URL"),
        (
            "services: {x: {prometheus: {url: 'http://u:p@h:9090'}}}",
            "services.x.prometheus.url: credentials in the URL are not allowed",
        ),
        ("services: {x: {prometheus: {}}}", "services.x.prometheus.url: missing"),
        (
            "services: {x: {prometheus: {url: 'http://h:1', profile: k8s}}}",
            "services.x.prometheus.profile: unknown profile 'k8s' (known: auto, demo-service, micrometer, "
            "opentelemetry, go, python, kubernetes, client)",
        ),
        (
            "services: {x: {prometheus: {url: 'http://h:1', profile: auto}}}",
            'services.x.prometheus.selector: profile auto needs a selector (e.g. job="shop-api")',
        ),
        (
            "services: {x: {prometheus: {url: 'http://h:1', dimension_label: 'a-b'}}}",
            "services.x.prometheus.dimension_label: 'a-b' is not a Prometheus label name",
        ),
        (
            "services: {x: {prometheus: {url: 'http://h:1', memory_limit_bytes: -5}}}",
            "services.x.prometheus.memory_limit_bytes: must be a positive number, got -5",
        ),
        ("services: {x: {objectives: {error_ratio: 2}}}", "services.x.objectives.error_ratio: a fraction"),
        ("services: {x: {objectives: {apdex: 2}}}", "services.x.objectives.apdex: unknown key"),
        (
            "services: {x: {prometheus: {url: 'http://h:1', urll: 1}}}",
            "services.x.prometheus.urll: unknown key (allowed: url, profile",
        ),
        (
            "services: {x: {prometheus: {url: 'http://h:1', timeout_s: -1}}}",
            "timeout_s: must be a positive number",
        ),
        (
            "services: {x: {prometheus: {url: 'http://h:1', timeout_s: yes}}}",
            "timeout_s: must be a positive number",
        ),
        (
            "services: {x: {prometheus: {url: 'http://h:1', queries: {a: 3}}}}",
            "queries.a: must be a PromQL string",
        ),
        ("services: {x: {prometheus: {url: 'http://h:1', queries: [a]}}}", "queries: must be a mapping"),
        (
            "services: {x: {prometheus: {url: 'http://h:1', metrics: [nope]}}}",
            "services.x.prometheus.metrics: 'nope' has no query",
        ),
        (
            "services: {x: {prometheus: {url: 'http://h:1', username: bob}}}",
            "username and password_env go together",
        ),
        (
            "services: {x: {prometheus: {url: 'http://h:1', selector: \"a\\nb\"}}}",
            "selector: must be label matchers on one line",
        ),
        (
            "services: {x: {windows: {verify_s: 0}, logs: {type: jsonl, path: f}}}",
            "windows.verify_s: must be",
        ),
        (
            "services: {x: {logs: {type: syslog}}}",
            "services.x.logs.type: must be jsonl or loki, got 'syslog'",
        ),
        ("services: {x: {logs: {type: jsonl}}}", "services.x.logs.path: missing"),
        ("services: {x: {logs: {type: loki, url: 'http://h:3100'}}}", "services.x.logs.query: missing"),
        (
            "services: {x: {logs: {type: jsonl, path: f, max_lines: 1.5}}}",
            "max_lines: must be a positive whole",
        ),
        ("services: {x: {executor: [kubectl]}}", "services.x.executor: must be a mapping, got a list"),
        ("services: {x: {environmnt: prod}}", "services.x.environmnt: unknown key"),
        ("services: {'bad name!': {}}", "a service name is letters, digits"),
    ],
)
def test_each_bad_file_names_the_path(services_file, text: str, expected: str) -> None:
    path = services_file(text)
    with pytest.raises(ConfigError) as caught:
        load_services(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)
    assert all("\n" not in problem for problem in caught.value.problems)


def test_every_problem_is_reported_on_its_own_line(services_file) -> None:
    path = services_file(
        "services:\n"
        "  a: {prometheus: {url: nope}}\n"
        "  b: {logs: {type: jsonl}}\n"
        "  c: {windows: {baseline_s: -5}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_services(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}: 3 problems"
    assert lines[1:] == [
        "services.a.prometheus.url: must be an http(s) URL with a host (http://host:port or https://...), "
        "got 'nope'",
        "services.b.logs.path: missing",
        "services.c.windows.baseline_s: must be a positive number, got -5",
    ]


def test_a_secret_written_in_the_file_is_refused_and_never_echoed(services_file) -> None:
    path = services_file(
        "services:\n"
        "  x:\n"
        "    prometheus: {url: 'http://h:1', token: s3cr3t-value, password_env: 'hunter2 value'}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_services(path)
    text = str(caught.value)
    assert "services.x.prometheus.token: secrets are never written in this file" in text
    assert "services.x.prometheus.password_env: must be the name of an environment variable" in text
    assert "s3cr3t" not in text and "hunter2" not in text


def test_missing_file_and_missing_service_are_no_source(tmp_path: Path, services_file) -> None:
    absent = tmp_path / "nowhere.yaml"
    with pytest.raises(NoSourceConfigured) as caught:
        service_config("payment-service", Settings(services_file=absent))
    assert str(caught.value) == (
        "no telemetry source configured for service 'payment-service'; add it to CONSOLE_SERVICES_FILE "
        f"({absent} does not exist)"
    )
    with pytest.raises(NoSourceConfigured, match="the setting is not set"):
        service_config("payment-service", Settings())
    path = services_file(GOOD)
    with pytest.raises(NoSourceConfigured) as caught:
        service_config("payment-service", Settings(services_file=path))
    assert str(caught.value) == (
        "no telemetry source configured for service 'payment-service'; add it to CONSOLE_SERVICES_FILE "
        f"({path} lists: demo-service, payments)"
    )


def test_a_service_with_only_an_executor_has_no_source(services_file) -> None:
    path = services_file("services:\n  ops: {executor: {type: simulated}}\n")
    with pytest.raises(NoSourceConfigured, match="add a prometheus or logs section"):
        service_config("ops", Settings(services_file=path))


def test_tokens_are_read_from_the_environment_only_when_a_source_is_built(services_file) -> None:
    demo = load_services(services_file(GOOD)).services["demo-service"]
    assert demo.prometheus is not None
    assert "PROM_TOKEN" in repr(demo) and "tok-123" not in repr(demo)
    with pytest.raises(ConfigError) as caught:
        PrometheusSource.from_config(demo.prometheus, env={})
    assert str(caught.value) == (
        "services.demo-service.prometheus.token_env: the environment variable PROM_TOKEN is not set "
        "(it should hold the secret)"
    )
    source = PrometheusSource.from_config(demo.prometheus, env={"PROM_TOKEN": "tok-123"})
    assert "tok-123" not in repr(source) and "bearer" in repr(source)
    assert resolve_secret(None, "x") is None


def test_settings_read_the_services_file_and_windows_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        env={
            "CONSOLE_SERVICES_FILE": str(tmp_path / "s.yaml"),
            "LIVE_BASELINE_S": "1800",
            "LIVE_VERIFY_S": "900",
        },
        secrets_path=tmp_path / "none.toml",
    )
    assert settings.services_file == tmp_path / "s.yaml"
    assert (settings.live_baseline_s, settings.live_verify_s, settings.live_post_action_s) == (1800, 900, 30)
    defaults = Settings()
    assert defaults.services_file is None
    assert (defaults.live_baseline_s, defaults.live_verify_s, defaults.live_post_action_s) == (30, 45, 30)


def test_a_new_service_is_a_url_a_selector_and_at_most_a_limit(services_file) -> None:
    """The three lines of the README: profile auto, a selector, a memory limit; the rest defaults."""
    path = services_file(
        "services:\n"
        "  shop-api:\n"
        "    prometheus: {url: 'http://127.0.0.1:9090', profile: auto, selector: 'job=\"shop-api\"', "
        "memory_limit_bytes: 268435456}\n"
    )
    service = load_services(path).service("shop-api")
    prom = service.metrics
    assert (prom.kind, prom.profile, prom.selector, prom.memory_limit_bytes) == (
        "prometheus", "auto", 'job="shop-api"', 268435456.0,
    )  # fmt: skip
    assert service.prometheus is prom  # the section as readers of Prometheus only know it
    assert prom.dimension_label is None and prom.status_label is None  # found in the series
    assert service.objectives.empty and service.trend_horizon_s == 3600.0


def test_objectives_and_horizon_are_read(services_file) -> None:
    path = services_file(
        "services:\n  x:\n    objectives: {error_ratio: 0.01, latency_p95_ms: 250}\n"
        "    trend_horizon_s: 600\n"
        "    prometheus: {url: 'http://h:1', dimension_label: route, status_label: status_code}\n"
    )
    service = load_services(path).service("x")
    assert (service.objectives.error_ratio, service.objectives.latency_p95_ms) == (0.01, 250.0)
    assert service.trend_horizon_s == 600.0
    assert (service.metrics.dimension_label, service.metrics.status_label) == ("route", "status_code")
