"""Hypothesis strategies for external JSON: arbitrary values, near-valid documents, timestamps."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

# Leaves include what json.loads can really produce from hostile text: huge integers (up to Python's
# 4300-digit limit), Infinity/NaN (json accepts them), control characters, surrogate-free unicode.
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
JSON = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=15,
)

# Timestamps that look ISO-8601 to a regex but may be impossible or overflow once converted to UTC.
_ISO_LIKE = st.from_regex(
    r"\A(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|z|[+-]\d{2}:\d{2})?\Z",
    fullmatch=True,
)
EDGE_TIMES = st.sampled_from(
    [
        "9999-12-31T23:59:59-01:00",  # valid text, overflows once moved to UTC
        "0001-01-01T00:00:00+01:00",  # underflows once moved to UTC
        "0000-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-20T24:00:00Z",
        "2026-11-20T23:59:60Z",
        "2026-11-20T12:00:00+24:00",
        "2026-11-20",
        "",
        " ",
        "Z",
    ]
)


_EPOCH_MIN = int(datetime(1971, 1, 1, tzinfo=UTC).timestamp())
_EPOCH_MAX = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp())


def _render_time(epoch: int, micros: int, offset_min: int, zulu: bool) -> str:
    moment = datetime.fromtimestamp(epoch, UTC).replace(microsecond=micros)
    text = moment.astimezone(timezone(timedelta(minutes=offset_min))).isoformat()
    return text.replace("+00:00", "Z") if zulu else text


def good_times() -> st.SearchStrategy[str]:
    """Valid ISO-8601 timestamps with any UTC offset (cheap to generate: built from integers)."""
    return st.builds(
        _render_time,
        st.integers(_EPOCH_MIN, _EPOCH_MAX),
        st.integers(0, 999_999) | st.just(0),
        st.integers(-14 * 60, 14 * 60),
        st.booleans(),
    )


TIMES = good_times() | _ISO_LIKE | EDGE_TIMES | st.text(max_size=40)


@st.composite
def snapshot_docs(draw) -> dict[str, Any]:
    """A schema-valid snapshot document (timestamps may still be impossible dates)."""
    dep: dict[str, Any] = {
        "id": draw(st.text(min_size=1, max_size=20)),
        "service": draw(st.text(min_size=1, max_size=20)),
        "version": draw(st.text(min_size=1, max_size=20)),
        "deployed_at": draw(good_times()),
    }
    if draw(st.booleans()):
        dep["previous_version"] = draw(st.none() | st.text(max_size=20))
    if draw(st.booleans()):
        dep["environment"] = draw(st.text(max_size=20))
    names = draw(st.lists(st.text(min_size=1, max_size=12), max_size=3, unique=True))
    metrics = {
        name: draw(
            st.lists(
                st.tuples(good_times(), st.floats(allow_nan=False, allow_infinity=False) | st.integers()).map(
                    list
                ),
                max_size=5,
            )
        )
        for name in names
    }
    logs = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "ts": good_times(),
                    "level": st.text(min_size=1, max_size=8),
                    "message": st.text(max_size=40),
                },
                optional={"source": st.none() | st.text(max_size=10)},
            ),
            max_size=4,
        )
    )
    return {"deployment": dep, "metrics": metrics, "logs": logs}


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (sequence of keys/indexes) into a JSON document, the root included."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*prefix, i))
    return out


@st.composite
def mutated(draw, base: st.SearchStrategy[Any], replacement: st.SearchStrategy[Any] = JSON) -> Any:
    """A valid document with 1-3 nodes replaced by arbitrary JSON (or a timestamp-like text), or deleted."""
    doc = copy.deepcopy(draw(base))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        value = draw(replacement | TIMES)
        if not path:
            return value
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.integers(0, 4)) == 0:
            del parent[path[-1]]  # a missing key / a shorter list
        else:
            parent[path[-1]] = value
    return doc


def kestra_execution_docs() -> st.SearchStrategy[dict[str, Any]]:
    """Execution JSON the way Kestra 1.x/2.x returns it."""

    def state(current: str) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(
            {
                "current": st.just(current),
                "histories": st.lists(
                    st.fixed_dictionaries({"state": st.sampled_from(STATES), "date": good_times()}),
                    max_size=3,
                ),
            },
            optional={"startDate": good_times(), "duration": st.just("PT1.5S")},
        )

    task_run = st.sampled_from(STATES).flatmap(
        lambda s: st.fixed_dictionaries(
            {
                "id": st.text(min_size=1, max_size=8),
                "taskId": st.text(min_size=1, max_size=8),
                "state": state(s),
            },
            optional={
                "outputs": st.dictionaries(st.text(max_size=5), LEAVES, max_size=2),
                "parentTaskRunId": st.none() | st.text(max_size=5),
                "value": st.none() | st.text(max_size=5),
            },
        )
    )
    return st.sampled_from(STATES).flatmap(
        lambda s: st.fixed_dictionaries(
            {
                "id": st.text(min_size=1, max_size=22),
                "namespace": st.text(min_size=1, max_size=12),
                "flowId": st.text(min_size=1, max_size=12),
                "state": state(s),
            },
            optional={
                "inputs": st.dictionaries(st.text(max_size=5), JSON, max_size=3),
                "outputs": st.dictionaries(st.text(max_size=5), JSON, max_size=3),
                "labels": st.lists(
                    st.fixed_dictionaries({"key": st.text(max_size=5), "value": st.text(max_size=5)}),
                    max_size=3,
                )
                | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
                "taskRunList": st.lists(task_run, max_size=3),
                "parentId": st.none() | st.text(max_size=8),
                "flowRevision": st.none() | st.integers(min_value=1, max_value=99),
                "tenantId": st.just("main"),
            },
        )
    )


STATES = [
    "CREATED",
    "RUNNING",
    "PAUSED",
    "SUCCESS",
    "FAILED",
    "KILLED",
    "WARNING",
    "CANCELLED",
    "QUEUED",
    "RESTARTED",
]


def log_docs() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"timestamp": good_times(), "level": st.sampled_from(["INFO", "WARN", "ERROR", "DEBUG", "TRACE"])},
        optional={
            "message": st.text(max_size=40) | JSON,
            "taskId": st.none() | st.text(max_size=5),
            "taskRunId": st.none() | st.text(max_size=5),
            "executionId": st.text(max_size=5),
        },
    )


def llm_answer_docs() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "verdict": st.sampled_from(["CONTINUE", "ROLLBACK", "ESCALATE"]),
            "summary": st.text(min_size=1, max_size=80),
            "root_cause": st.text(max_size=80),
            "impact": st.text(max_size=80),
            "reasoning": st.text(max_size=200),
            "actions": st.lists(
                st.fixed_dictionaries(
                    {
                        "name": st.sampled_from(["rollback_deployment", "notify_only", "made_up", ""])
                        | st.text(max_size=10),
                        "reason": st.text(max_size=40),
                    }
                ),
                max_size=8,
            ),
        }
    )


def scenario_docs() -> st.SearchStrategy[dict[str, Any]]:
    meta = st.fixed_dictionaries(
        {
            "id": st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}\Z", fullmatch=True),
            "title": st.text(min_size=1, max_size=20).filter(str.strip),
            "expected_verdict": st.sampled_from(["CONTINUE", "ROLLBACK", "ESCALATE", "rollback"]),
        },
        optional={"description": st.text(max_size=40)},
    )
    return st.tuples(snapshot_docs(), meta).map(lambda pair: {**pair[0], "scenario": pair[1]})
