"""Step choice, PromQL rendering, value parsing and graph links (no network); the profiles and
recording rules parsed by promtool."""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from console.telemetry.config import PrometheusConfig
from console.telemetry.prometheus import PrometheusSource, parse_matrix, profile_metrics
from console.telemetry.promql import (
    MAX_POINTS,
    choose_step,
    detect_profile,
    format_duration,
    load_profiles,
    rate_range,
    render,
    sample_selector,
)
from livestack.processes import (
    RULES_FILE,
    check_config,
    check_rules,
    render_prometheus_config,
    write_prometheus_config,
)
from tests.telemetry.conftest import require

CANONICAL = {
    "error_rate",
    "latency_p95_ms",
    "requests_per_second",
    "cpu_utilization",
    "memory_utilization",
    "pod_restarts",
}


@pytest.mark.parametrize(
    ("window", "scrape", "requested", "step", "raised"),
    [
        (45, 1, None, 1, False),  # live demo: every scrape
        (3600, 15, None, 15, False),  # 3600 / 300 = 12 -> never finer than the scrape interval
        (3600, 1, None, 15, False),  # 12 s rounded up to a round step
        (6 * 3600, 15, None, 120, False),  # 72 s -> 2 min
        (7 * 86400, 30, None, 3600, False),  # 2016 s -> 1 h
        (3600, 1, 1, 1, False),  # asked for 1 s over 1 h: 3,600 points is fine
        (11_000, 1, 1, 1, False),  # exactly the limit
        (4 * 3600, 1, 1, 2, True),  # 14,400 points would be refused: raised to 2 s
        (30 * 86400, 15, 15, 236, True),
        (10, 0.25, None, 0.25, False),  # sub-second scrape
    ],
)
def test_step_choice(
    window: float, scrape: float, requested: float | None, step: float, raised: bool
) -> None:
    choice = choose_step(window, scrape, requested_s=requested)
    assert choice.step_s == step
    assert window / choice.step_s <= MAX_POINTS
    assert (choice.note is not None) == raised
    if raised:
        assert "Prometheus' 11,000-point limit" in (choice.note or "")


def test_automatic_step_gives_a_few_hundred_points_and_never_passes_the_limit() -> None:
    for window in (60, 900, 3600, 86400, 7 * 86400, 90 * 86400, 3 * 365 * 86400):
        for scrape in (1, 15, 60):
            choice = choose_step(window, scrape)
            assert choice.step_s >= scrape
            assert window / choice.step_s <= MAX_POINTS
            assert choice.note is None
            if window / scrape > 300:
                assert 100 <= window / choice.step_s <= 300


def test_step_choice_refuses_nonsense() -> None:
    for args in ((0, 1), (-5, 1), (10, 0)):
        with pytest.raises(ValueError):
            choose_step(*args)
    with pytest.raises(ValueError):
        choose_step(10, 1, requested_s=0)


def test_durations_and_rate_range() -> None:
    assert [format_duration(s) for s in (1, 90, 3600, 5400, 1.5, 0.25, 86400 + 1)] == [
        "1s", "1m30s", "1h", "1h30m", "1s500ms", "250ms", "1d1s",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        format_duration(0)
    assert rate_range(1, 1) == 4  # four scrapes
    assert rate_range(60, 15) == 75  # one step plus a scrape


def test_rendering_fills_selector_range_and_step() -> None:
    template = (
        'sum(rate(x{code=~"5..",{selector}}[{range}])) / sum(rate(x{{selector}}[{range}])) offset {step}'
    )
    assert render(template, selector='job="a"', range_s=4, step_s=1) == (
        'sum(rate(x{code=~"5..",job="a"}[4s])) / sum(rate(x{job="a"}[4s])) offset 1s'
    )
    # an empty selector leaves valid PromQL: no `{}` and no dangling comma
    assert render(template, selector="", range_s=75, step_s=60) == (
        'sum(rate(x{code=~"5.."}[1m15s])) / sum(rate(x[1m15s])) offset 1m'
    )
    assert render("y{{http_selector}} + z{{selector}}", selector='a="1"', range_s=1, step_s=1) == (
        'y{a="1"} + z{a="1"}'
    )
    assert render("y{{http_selector}}", selector='a="1"', http_selector='{b="2"}', range_s=1, step_s=1) == (
        'y{b="2"}'
    )


def test_every_profile_defines_canonical_metrics_only_with_known_placeholders() -> None:
    profiles = load_profiles()
    assert list(profiles) == [
        "demo-service", "micrometer", "opentelemetry", "go", "python", "kubernetes", "client",
    ]  # fmt: skip
    assert set(profiles["demo-service"].metrics) == CANONICAL
    assert set(profiles["kubernetes"].metrics) == CANONICAL
    assert set(profiles["micrometer"].metrics) == CANONICAL - {"pod_restarts"}
    for profile in profiles.values():
        assert profile.description
        # every profile counts requests and latency from raw series; the standard ones need no PromQL
        assert {"requests", "latency"} <= set(profile.families), profile.name
        assert CANONICAL - {"cpu_utilization"} <= profile_metrics(profile) | {"memory_utilization"}
        for expr in profile.metrics.values():
            rendered = render(expr, selector='a="b"', range_s=4, step_s=1)
            assert "{selector}" not in rendered and "{range}" not in rendered and "{step}" not in rendered
            assert "{http_selector}" not in rendered


@pytest.mark.parametrize(
    ("names", "picked"),
    [
        ({"http_requests_total", "http_request_duration_seconds_bucket", "python_info",
          "process_resident_memory_bytes"}, "python"),
        ({"http_requests_total", "go_goroutines", "go_info", "process_resident_memory_bytes"}, "go"),
        ({"http_server_request_duration_seconds_bucket", "http_server_request_duration_seconds_count",
          "process_memory_usage_bytes"}, "opentelemetry"),
        ({"http_server_duration_milliseconds_bucket", "go_goroutines"}, "opentelemetry"),
        ({"http_server_requests_seconds_count", "jvm_memory_used_bytes"}, "micrometer"),
        ({"service:http_requests:rate5s", "http_requests_total"}, "demo-service"),
        ({"container_memory_working_set_bytes", "kube_pod_container_status_restarts_total"}, "kubernetes"),
        ({"http_requests_total", "process_cpu_seconds_total"}, "client"),
    ],
)  # fmt: skip
def test_profile_auto_picks_from_the_metric_names_and_says_why(names: set[str], picked: str) -> None:
    profile, why = detect_profile(names)
    assert profile is not None and profile.name == picked
    assert why.startswith(f"profile {picked} picked automatically: the selector has ")


def test_profile_auto_without_a_fit_says_what_it_found() -> None:
    profile, why = detect_profile({"node_load1", "node_cpu_seconds_total"})
    assert profile is None
    assert why.startswith(
        "profile auto: no profile fits the metric names the selector has (node_cpu_seconds_total, "
    )
    assert "pick one of demo-service, micrometer" in why


@pytest.mark.parametrize(
    ("promql", "selector"),
    [
        ('rule:errors:ratio_rate5s{service="x"}', 'rule:errors:ratio_rate5s{service="x"}'),
        ('(sum(rate(x{code=~"5..",job="a"}[4s])) or vector(0)) / sum(rate(x{job="a"}[4s]))', 'x{job="a"}'),
        ('(sum(rate(x{code=~"5.."}[4s])) or vector(0)) / sum(rate(x[4s]))', "x"),
        ("clamp_min(a - a offset 1s, 0)", "a"),
        ("1000 * histogram_quantile(0.95, sum by (le) (rate(b_bucket[5s])))", "b_bucket"),
        ("max(process_cpu_usage * on (job, instance) system_cpu_count)", "system_cpu_count"),
        ("vector(1)", None),
    ],
)  # fmt: skip
def test_the_series_that_counts_a_querys_real_samples(promql: str, selector: str | None) -> None:
    """The last vector selector: the denominator of a ratio, the only series of a rule."""
    assert sample_selector(promql) == selector


def test_values_arrive_as_strings_and_non_numbers_are_dropped_and_counted() -> None:
    data = {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"service": "demo-service"},
                "values": [
                    [100, "0.5"],
                    [101, "NaN"],
                    [102, "+Inf"],
                    [103, "-Inf"],
                    [104.5, "1e-3"],
                    [105, "NaN"],
                ],
            }
        ],
    }
    result = parse_matrix(data)
    assert result.series[0].points == [(100.0, 0.5), (104.5, 0.001)]
    assert result.dropped == {"NaN": 2, "+Inf": 1, "-Inf": 1}
    assert result.series[0].labels == {"service": "demo-service"}
    assert parse_matrix({"resultType": "matrix", "result": []}).series == []
    for bad in (
        {"resultType": "vector", "result": []},
        {"result": []},
        [],
        {"resultType": "matrix", "result": {}},
    ):
        with pytest.raises(ValueError):
            parse_matrix(bad)
    with pytest.raises(ValueError):
        parse_matrix({"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "abc"]]}]})
    assert math.isnan(float("NaN"))  # the spelling Prometheus uses parses as Python's NaN


def test_graph_link_opens_the_same_query_and_window() -> None:
    source = PrometheusSource(PrometheusConfig(url="http://127.0.0.1:9090/prom"))
    link = source.graph_url('sum(rate(x{a="b"}[5s]))', 1_800_000_000, 1_800_003_600, step_s=15)
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://127.0.0.1:9090/prom/graph"
    query = parse_qs(parts.query)
    assert query["g0.expr"] == ['sum(rate(x{a="b"}[5s]))']
    assert query["g0.tab"] == ["0"]
    assert query["g0.range_input"] == ["1h"]
    assert query["g0.end_input"] == ["2027-01-15 09:00:00"]
    assert query["g0.step_input"] == ["15"]


# -- promtool (Debian's binary; quick, no server) -----------------------------------------------


def test_recording_rules_and_rendered_config_pass_promtool(tmp_path: Path) -> None:
    require("promtool")
    assert "SUCCESS: 6 rules found" in check_rules(RULES_FILE)
    config = render_prometheus_config(
        {"demo-service": ["127.0.0.1:8701"], "demo-deployer": ["127.0.0.1:8700"]},
        alertmanager_url="http://127.0.0.1:9093",
    )
    path = write_prometheus_config(tmp_path / "prometheus.yml", config)
    output = check_config(path)
    assert "is valid prometheus config file syntax" in output
    assert config["global"]["scrape_timeout"] == "1s"  # never above the 1 s interval


def test_every_profile_query_parses_as_promql(tmp_path: Path) -> None:
    """Each profile rendered for a live-demo step and a production step, run through promtool's
    PromQL parser as recording rules."""
    require("promtool")
    rules = []
    for profile in load_profiles().values():
        for metric, expr in profile.metrics.items():
            for i, (selector, step, scrape) in enumerate((('service="demo-service"', 1, 1), ("", 60, 15))):
                rules.append(
                    {
                        "record": f"check:{profile.name.replace('-', '_')}:{metric}_{i}",
                        "expr": render(
                            expr, selector=selector, range_s=rate_range(step, scrape), step_s=step
                        ),
                    }
                )
    path = tmp_path / "profiles.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "profiles", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in check_rules(path)


def test_promtool_reports_a_broken_rule(tmp_path: Path) -> None:
    require("promtool")
    path = tmp_path / "bad.yml"
    path.write_text("groups: [{name: g, rules: [{record: 'a:b', expr: 'sum(rate(x[5s])'}]}]\n")
    from livestack.processes import LiveStackError

    with pytest.raises(LiveStackError, match="unclosed left parenthesis"):
        check_rules(path)
