"""What an approval card says of the rollback's target, its verdict and who started the run when the
approval row leaves things to the decision; and what a Live chart draws: its title, its range, the
deploy, rollback and action markers with their labels, and an empty window; and the before/after
comparison's order, levels and axis."""

from __future__ import annotations

from datetime import UTC, datetime

from console.loop.revisions import Target
from console.presentation import approval_card as cards
from console.presentation import charts, live_section
from tests.ui.test_operator_views import _result

APPROVAL = {
    "id": "ap-9",
    "execution_id": "ex-9",
    "service": "shop",
    "actions": [],
    "risk": None,
    "decision": {"verdict": "ESCALATE", "severity": "MEDIUM", "rule": "mixed-signals"},
    "votes": [{"actor": "bob", "approved": True}, {"approved": False}],
    "requested_by": "alice",
    "requested_by_source": "cli --as (unverified)",
}
STARTERS = [
    {
        "name": "ci",
        "roles": ["deployer", "launcher"],
        "sources": {"deployer": "console sign-in", "launcher": ""},
    },
    {"name": "x", "roles": ["watcher"]},
]


def test_the_card_takes_the_verdict_from_the_decision_and_offers_the_other_known_good_versions() -> None:
    target = Target("v2", "v1", "healthy, verified 10:02 for 45 s", ("v1.9 is known-bad: not a target",),
                    ("v1", "v0.9"))  # fmt: skip
    card = cards.build_card(
        APPROVAL, deployment={"version": "v2"}, levels={}, starters=STARTERS, target=target
    )
    assert (card.service, card.version, card.verdict, card.severity, card.risk) == (
        "shop", "v2", "ESCALATE", "MEDIUM", ""
    )  # fmt: skip
    assert card.headline == "No action named" and not card.dangerous and not card.evidence_open
    assert card.target == "v1: healthy, verified 10:02 for 45 s" and card.target_version == "v1"
    assert card.target_notes == ["v1.9 is known-bad: not a target"] and card.alternatives == ["v0.9"]
    assert not card.no_target and card.verdict_rule == "mixed-signals"
    assert card.voters == ["bob"] and card.votes == ["bob approved", "None rejected"]
    assert [(p.role, p.name, p.source) for p in card.people] == [
        (
            "deployed and launched by",
            "ci",
            "signed in to the console; where this name came from was not recorded",
        ),
        ("requested by", "alice", "typed on the command line (--as), not verified"),
    ]


def test_a_card_without_a_known_good_version_says_so() -> None:
    nowhere = Target("v2", None, "no known-good version of shop other than v2: nothing safe to roll back to")
    card = cards.build_card(APPROVAL, deployment=None, levels={}, starters=[], target=nowhere)
    assert (card.service, card.version, card.target_version, card.no_target) == ("shop", "?", None, True)
    assert card.target == "no known-good version of shop other than v2: nothing safe to roll back to"
    assert card.target_notes == [] and card.alternatives == []
    plain = cards.build_card(APPROVAL, deployment=None, levels={}, starters=[])
    assert (plain.target, plain.target_version, plain.no_target, plain.alternatives) == (
        None,
        None,
        False,
        [],
    )


START = 1_800_000_000.0


def when(seconds: float) -> datetime:
    return datetime.fromtimestamp(START + seconds, UTC)


def test_a_live_chart_draws_markers_labelled_where_they_stay_readable() -> None:
    points = [(START + 30 + i, 0.02 * i) for i in range(5)]
    markers = [
        live_section.Marker(START + 31, "deployed v2 by alice", "deploy", "v2"),
        live_section.Marker(START + 33, "rolled back to v1", "rollback"),
        live_section.Marker(START + 100, "restart_pod done", "action", "restart"),
    ]
    figure = live_section.live_figure("error_rate", points, markers, START, START + 120).to_dict()
    layout = figure["layout"]
    assert layout["title"]["text"] == "Error rate · 8.0 %"
    assert layout["xaxis"]["range"] == [when(20), when(120)]  # starts 10 s before the first point
    assert layout["yaxis"] == {"range": [0, 9.6], "rangemode": "tozero",
                               "title": {"font": {"size": 11}, "text": "% of requests"}}  # fmt: skip
    assert [(s["name"], s["line"]["dash"], s["line"]["color"], s["x0"]) for s in layout["shapes"]] == [
        ("deploy", "dash", "#7F7F7F", when(31)),
        ("rollback", "dash", "#D62728", when(33)),
        ("action", "dot", "#6A1B9A", when(100)),
    ]
    assert [
        (a["text"], a["y"], a["yanchor"], a["xanchor"], a["hovertext"]) for a in layout["annotations"]
    ] == [
        ("v2", 1.0, "top", "left", "deployed v2 by alice"),
        ("rolled back to v1", 0.86, "top", "left", "rolled back to v1"),  # a second height: no overlap
        ("restart", 0.0, "bottom", "right", "restart_pod done"),  # right of the middle: anchored right
    ]
    [line] = figure["data"]
    assert line["y"] == [0.0, 2.0, 4.0, 6.0, 8.0] and line["hovertemplate"] == "%{y:.3g} %<extra></extra>"


def test_an_empty_window_says_so_and_a_share_keeps_its_scale_only_while_it_fits() -> None:
    empty = live_section.live_figure("memory_utilization", [], [], START, START + 120).to_dict()["layout"]
    assert empty["title"]["text"] == "Memory use · no data"
    assert [a["text"] for a in empty["annotations"]] == ["no data in this window"]
    assert empty["yaxis"]["range"] == [0, 100] and empty["xaxis"]["range"] == [when(0), when(120)]
    over = live_section.live_figure("error_rate", [(START, 2.0)], [], START, START + 120).to_dict()["layout"]
    assert "range" not in over["yaxis"]  # 200 %: the axis scales itself
    latency = live_section.live_figure("latency_p95_ms", [(START, 412.3)], [], START, START + 120).to_dict()[
        "layout"
    ]
    assert latency["title"]["text"] == "p95 latency · 412 ms" and "range" not in latency["yaxis"]


def test_the_comparison_puts_the_largest_change_first_and_uses_the_summarys_levels() -> None:
    results = [
        _result("error_rate", 0.01, 0.30),
        _result("latency_p95_ms", 100.0, 200.0),
        _result("memory_utilization", 0.5, 0.9),
        _result("requests_per_second", 120.0, 40.0, "Low"),
        _result("cpu_utilization", 0.40, 0.41, "Pass"),
    ]
    levels = {"latency_p95_ms": (0.0, 50.0), "cpu_utilization": (0.4, None)}  # no level now: no bar
    layout = charts.comparison_figure(results, levels=levels).to_dict()["layout"]
    [worse] = charts.comparison_figure(results, levels=levels).to_dict()["data"]
    assert worse["name"] == "worse" and worse["text"] == [
        "0 ms → 50 ms (+9,900%)",  # from zero: counted as the largest change shown (x100)
        "1.0% → 30.0% (+2,900%)",
        "120.0 req/s → 40.0 req/s (−67%)",
        "50.0% → 90.0% (+80%)",
    ]
    assert layout["yaxis"]["categoryarray"] == [
        "Memory utilisation",
        "Requests / s",
        "Error rate",
        "p95 latency (ms)",
    ]
    assert layout["xaxis"]["range"] == [-3.8, 3.8]  # something went down: room on both sides
    assert layout["xaxis"]["ticktext"] == ["−90%", "−50%", "0%", "+100%", "+900%", "+9,900%"]
    assert layout["height"] == 90 + 34 * 4
