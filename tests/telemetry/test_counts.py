"""Raw samples to counts (console/telemetry/counts.py), no network: counter increments with resets
and children created inside the window, histograms (no ``le``, differing layouts, milliseconds),
restarts, gauges with their limits, and the canonical metrics per real scrape, gaps left as gaps."""

from __future__ import annotations

import pytest

from console.domain.evidence import bucket_quantile, status_class
from console.telemetry import counts as C


def raw(labels: dict[str, str], *points: tuple[float, float]) -> C.Raw:
    return C.Raw(labels, list(points))


def test_increments_count_resets_from_zero():
    times, incs, resets = C.increments([(1, 10), (2, 15), (3, 4), (4, 9)], from_zero=False)
    assert (times, incs, resets) == ([2, 3, 4], [5, 4, 5], [3])
    # a child created inside the window: its first value is counted
    assert C.increments([(5, 1), (6, 3)], from_zero=True)[1] == [1, 2]


def test_request_counts_per_route_and_status_class_with_a_child_born_inside():
    notes = C.Notes()
    series = [
        raw({"instance": "a", "handler": "/x", "code": "200"}, (1, 100), (2, 110), (3, 120)),
        raw({"instance": "a", "handler": "/x", "code": "503"}, (3, 2)),  # first 5xx at second 3
        raw({"instance": "a", "handler": "/y", "code": "200"}, (1, 50), (2, 55), (3, 3)),  # restarted
    ]
    out = C.request_counts(series, dimension_label="handler", status_label="code", scrape_interval_s=1,
                           notes=notes, what="requests")  # fmt: skip
    by = {(s.dimension, s.status): (s.times, s.counts) for s in out}
    assert by[("/x", "2xx")] == ((2, 3), (10, 10))
    assert by[("/x", "5xx")] == ((3,), (2,))
    assert by[("/y", "2xx")] == ((2, 3), (5, 3))
    assert notes.lines == ["requests: counter reset (a process restart) at 1 sample: counted from zero"]


def test_status_labels_spelled_every_way():
    assert [status_class(c) for c in ("500", "5xx", "404", "2XX", "SERVER_ERROR", "UNKNOWN", "")] == [
        "5xx", "5xx", "4xx", "2xx", "5xx", "other", "other",
    ]  # fmt: skip
    labels = [raw({"http_route": "/a", "http_response_status_code": "200"})]
    assert C.pick_label(labels, C.DIMENSION_LABELS, None) == "http_route"
    assert C.pick_label(labels, C.STATUS_LABELS, None) == "http_response_status_code"
    assert C.pick_label(labels, C.DIMENSION_LABELS, "custom") == "custom"


def test_a_histogram_becomes_bucket_counts_per_scrape():
    notes = C.Notes()
    buckets = [
        raw({"instance": "a", "handler": "/x", "le": le}, (1, base), (2, base + inc))
        for le, base, inc in (("50", 3, 5), ("100", 4, 8), ("+Inf", 4, 9))
    ]
    latency = C.latency_counts(buckets, dimension_label="handler", unit="ms", scrape_interval_s=1,
                               notes=notes, what="latency")  # fmt: skip
    assert latency.bounds == (0.05, 0.1)  # milliseconds to seconds
    (series,) = latency.series
    assert series.times == (2,) and series.counts == ((5, 3, 1),)
    assert bucket_quantile(latency.bounds, series.counts[0], 0.5) == pytest.approx(0.05 * 4.5 / 5)


def test_a_histogram_without_le_or_with_two_layouts_says_so():
    notes = C.Notes()
    empty = C.latency_counts([raw({"instance": "a"}, (1, 1), (2, 2))], dimension_label=None, unit="s",
                             scrape_interval_s=1, notes=notes, what="latency")  # fmt: skip
    assert empty.series == () and "latency: a histogram without le: latency is left out" in notes.lines
    notes = C.Notes()
    mixed = [
        raw({"instance": "a", "version": "v1", "le": le}, (1, 0), (2, 1)) for le in ("0.1", "0.5", "+Inf")
    ] + [raw({"instance": "a", "version": "v2", "le": le}, (3, 0), (4, 1)) for le in ("0.1", "0.25", "+Inf")]
    latency = C.latency_counts(mixed, dimension_label=None, unit="s", scrape_interval_s=1, notes=notes,
                               what="latency")  # fmt: skip
    assert latency.bounds == (0.1,)
    assert "latency: bucket layouts differ between series: compared on the 2 shared bounds" in notes.lines


def test_restarts_from_a_start_time_or_a_counter():
    start = [raw({"instance": "a"}, (1, 100.0), (2, 100.0), (3, 250.0), (4, 250.0))]
    assert C.restart_times(start, "start_time") == [3]
    counter = [raw({}, (1, 0), (2, 2), (3, 2))]
    assert C.restart_times(counter, "counter") == [2, 2]


def test_a_gauge_takes_its_limit_from_its_instance_or_the_services_file():
    memory = [raw({"instance": "a"}, (1, 100.0), (2, 110.0)), raw({"instance": "b"}, (1, 50.0))]
    limits = [raw({"instance": "a"}, (1, 1000.0)), raw({"instance": "b"}, (1, -1.0))]
    out = C.gauges(memory, name="memory", group_by=("instance",), limits=limits, configured_limit=400.0,
                   limit_metric="jvm_memory_max_bytes")  # fmt: skip
    assert [(g.instance, g.limit, g.limit_source) for g in out] == [
        ("instance=a", 1000.0, "jvm_memory_max_bytes"),
        ("instance=b", 400.0, "memory_limit_bytes in the services file"),  # -1: a pool without a max
    ]


def test_the_canonical_metrics_have_a_point_per_scrape_and_a_gap_where_none_happened():
    notes = C.Notes()
    series = [raw({"instance": "a", "code": "200"}, *[(t, 20.0 * t) for t in (1, 2, 3, 7, 8)]),
              raw({"instance": "a", "code": "500"}, *[(t, float(t)) for t in (1, 2, 3, 7, 8)])]  # fmt: skip
    requests = C.request_counts(series, dimension_label=None, status_label="code", scrape_interval_s=1,
                                notes=notes, what="requests")  # fmt: skip
    points = C.derived_points(requests=requests, latency=C.Latency(), gauges_=(), cpu={}, restarts=None,
                              scrapes=[1, 2, 3, 7, 8], start=0, end=8, step=1)  # fmt: skip
    assert [t for t, _ in points["error_rate"]] == [2, 3, 7, 8]  # nothing for 4-6: a gap, no copies
    assert points["error_rate"][0][1] == pytest.approx(1 / 21)
    # the scrape after the gap holds the gap's requests: a rate over the 4 s they were counted in
    assert points["requests_per_second"][2] == (7, 21.0)
