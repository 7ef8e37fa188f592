"""Kestra 1.3's own rules, read from its source, for the flow linter and the fake server.

One implementation of each rule; every function names the Kestra class it mirrors (in
``kestra-io/kestra``, module ``core`` unless said otherwise). docs/kestra.md lists the versions
and commits they were read from, and what could not be confirmed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from console.engines.kestra.jackson import java_float, without_nulls

# io.kestra.core.models.flows.Type (1.x: BOOL beside the older BOOLEAN)
INPUT_TYPES = frozenset({
    "STRING", "ENUM", "SELECT", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME", "DATE", "TIME", "DURATION",
    "FILE", "JSON", "URI", "SECRET", "ARRAY", "MULTISELECT", "YAML", "EMAIL",
})  # fmt: skip
LEGACY_INPUT_TYPES = {"BOOLEAN": "BOOL"}
"""Older spellings with a 1.x replacement (the flows use the replacement)."""

# io.kestra.core.models.flows.Input.id, Flow.id / namespace, Task.id (@Pattern)
INPUT_ID = re.compile(r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$")
FLOW_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
TASK_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
MAX_ID = 100

# webserver: ExecutionController's kill route is
# @Delete(uri = "/{executionId}/kill{?isOnKillCascade}", produces = MediaType.TEXT_JSON)
KILL_MEDIA_TYPE = "text/json"
JSON_MEDIA_TYPE = "application/json"

# cli application.yml: kestra.server.basic-auth.open-urls (as BasicAuthServiceTest loads it)
DEFAULT_OPEN_URLS = ("/ping", "/api/v1/executions/webhook/", "/api/v1/main/executions/webhook/")


class InputError(ValueError):
    """An input value or declaration Kestra refuses; the message names the input."""


# -- declarations -------------------------------------------------------------------------------------


def name_of(value: Any) -> Hashable:
    """A value read from a flow, usable as a key or in a set of names: itself when hashable, else
    its repr (a list or a mapping where a name belongs is then simply a name nobody declared)."""
    return value if isinstance(value, Hashable) else repr(value)


def input_problems(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(rule, message) for one declared input, as Kestra validates it when a flow is saved: the
    ``@Pattern`` of ``Input.id``, the ``Type`` enum, ``SelectInput.values``, and
    ``InputValidator`` (since 1.1: a ``defaults`` makes the input required; ``defaults`` and
    ``prefill`` exclude each other). The same validator runs on a Pause's ``onResume``
    (``@Valid List<Input<?>>``)."""
    problems: list[tuple[str, str]] = []
    iid = spec.get("id")
    if not isinstance(iid, str) or not INPUT_ID.match(iid):
        problems.append(("kestra/id", f"input id {iid!r} does not match {INPUT_ID.pattern} (Input.id)"))
    kind = spec.get("type")
    if name_of(kind) not in INPUT_TYPES:
        problems.append(("kestra/input-type", f"type {kind!r} is not a Kestra input type (Type)"))
    if kind in ("SELECT", "MULTISELECT") and not spec.get("values") and not spec.get("expression"):
        problems.append(("kestra/input-values", f"{kind} needs 'values' or 'expression' (SelectInput)"))
    if "required" in spec and not isinstance(spec["required"], bool):
        problems.append(("kestra/input", "'required' must be a boolean (Input.required)"))
    if spec.get("defaults") is not None and spec.get("required") is False:
        problems.append(
            (
                "kestra/input-defaults-required",
                "Inputs with a default value must be required, since the default is always applied "
                "(InputValidator): drop 'required: false', or use 'prefill' for an optional initial value",
            )
        )
    if spec.get("defaults") is not None and spec.get("prefill") is not None:
        message = "Inputs with a default value cannot also have a prefill (InputValidator)"
        problems.append(("kestra/input-defaults-prefill", message))
    return problems


# -- values -------------------------------------------------------------------------------------------

_JAVA_INT = re.compile(r"^[+-]?\d+$")
_JAVA_FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fFdD]?$")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_value(kind: str, raw: Any, what: str) -> Any:
    """``FlowInputOutput.parseType``: a value (a multipart part, a rendered template) as the type
    says. STRING/SELECT/ENUM/EMAIL pass through; INT is ``Integer.valueOf`` (no decimals, 32 bits);
    FLOAT is ``Float.valueOf`` (a 32-bit float); BOOL/BOOLEAN is ``Boolean.valueOf``: true for
    "true" in any case and **false for anything else** (no error); JSON is Jackson (standard JSON
    only). InputError names ``what`` otherwise."""
    try:
        if kind in ("STRING", "SELECT", "ENUM", "EMAIL"):
            return raw if isinstance(raw, str) else str(raw)
        if kind in ("BOOL", "BOOLEAN"):
            return raw if isinstance(raw, bool) else str(raw).lower() == "true"
        if kind == "INT":
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            text = str(raw)
            if not _JAVA_INT.match(text) or not -(2**31) <= int(text) < 2**31:
                raise ValueError(f'For input string: "{text}"')
            return int(text)
        if kind == "FLOAT":
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                return java_float(float(raw))
            text = str(raw).strip()
            if text in ("NaN", "Infinity", "+Infinity", "-Infinity"):
                return float(text.replace("Infinity", "inf"))
            if not _JAVA_FLOAT.match(text):
                raise ValueError(f'For input string: "{raw}"')
            return java_float(float(text.rstrip("fFdD")))
        if kind == "JSON":
            if isinstance(raw, dict | list):
                return raw
            return json.loads(str(raw), parse_constant=_reject_constant)
    except (ValueError, TypeError) as exc:
        raise InputError(f"Invalid {what}: expected `{kind}` but received `{str(raw)[:60]}`: {exc}") from None
    raise InputError(f"Invalid {what}: the console does not model Kestra's {kind} type")


def parse_input(spec: Mapping[str, Any], raw: Any) -> Any:
    """One input's value: ``parse_value`` then ``Input.validate``. ``SelectInput.validate`` refuses a
    value outside ``values`` **only when the input is required** (and ``allowCustomValue`` is off):
    an optional SELECT takes any string."""
    iid, kind = spec.get("id"), spec.get("type")
    value = parse_value(str(kind), raw, f"input `{iid}`")
    if kind == "SELECT" and spec.get("required", True) and not spec.get("allowCustomValue"):
        allowed = [v.get("value") if isinstance(v, Mapping) else v for v in spec.get("values") or []]
        if value not in allowed:
            raise InputError(f"Invalid input `{iid}`: it must match the values `{allowed}`")
    return value


def resolve_inputs(declared: Iterable[Mapping[str, Any]], given: Mapping[str, Any]) -> dict[str, Any]:
    """``FlowInputOutput.readExecutionInputs``/``resolveInputs``: every declared input is in the
    result (an optional one not given is null: the key is there); a missing one takes its
    ``defaults``, and a required one without either is refused. ``prefill`` is a UI hint only
    (``Input.prefill``: "Optional UI hint"): it is never applied here. Values given for inputs the
    flow does not declare are dropped (Kestra logs a warning)."""
    out: dict[str, Any] = {}
    for spec in declared:
        iid = str(spec.get("id"))
        value = given.get(iid)
        if value is None and spec.get("defaults") is not None:
            value = spec["defaults"]
        if value is None:
            if spec.get("required", True):
                raise InputError(f"Missing required input: `{iid}`")
            out[iid] = None
            continue
        out[iid] = parse_input(spec, value)
    return out


def typed_outputs(declared: Iterable[Mapping[str, Any]], rendered: Mapping[str, Any]) -> dict[str, Any]:
    """``FlowInputOutput.typedOutputs``: each flow output parsed by its type (``parse_value``), then
    ``JacksonMapper.toMap``, which drops null values at every depth (NON_NULL): a JSON output that
    renders ``null`` is not in the execution's outputs at all."""
    out: dict[str, Any] = {}
    for spec in declared:
        oid = str(spec.get("id"))
        value = rendered.get(oid)
        if value is None:
            continue
        out[oid] = parse_value(str(spec.get("type")), value, f"output `{oid}`")
    return without_nulls(out)


# -- webhook ------------------------------------------------------------------------------------------


def webhook_declares_inputs(trigger: Mapping[str, Any]) -> bool:
    """Whether an execution started by this Webhook trigger has inputs: ``Webhook.evaluate`` builds it
    with ``.inputs(this.inputs)``, and ``ExecutionController.webhook`` resolves the flow's inputs
    only ``if (webhook.getInputs() != null)``. Without trigger ``inputs`` the execution has none,
    so ``{{ inputs.x }}`` is undefined in every task."""
    return trigger.get("inputs") is not None


def webhook_inputs(
    trigger: Mapping[str, Any], declared: Iterable[Mapping[str, Any]], render: Callable[[Any], Any]
) -> dict[str, Any] | None:
    """The inputs of a webhook execution: None without trigger ``inputs``; else the trigger's
    ``inputs`` rendered (``trigger.body`` is readable there) and resolved against the flow's inputs
    like an API launch (:func:`resolve_inputs`). A render or input error refuses the call (1.x:
    404 "No execution triggered")."""
    if not webhook_declares_inputs(trigger):
        return None
    raw = trigger["inputs"]
    rendered = {str(k): render(v) for k, v in (raw.items() if isinstance(raw, Mapping) else [])}
    return resolve_inputs(declared, rendered)


def is_open_url(path: str, open_urls: Iterable[str]) -> bool:
    """webserver ``AuthenticationFilter``: a path starting with an open URL skips basic auth."""
    return any(path.startswith(url) for url in open_urls)


# -- routes -------------------------------------------------------------------------------------------


def accepts(accept: str | None, produces: str) -> bool:
    """Micronaut's ``RouteMatch.doesProduce``: no Accept header, ``*/*`` or the exact media type the
    route produces; otherwise the route does not match and Micronaut answers 406."""
    if not accept:
        return True
    types = [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]
    return not types or "*/*" in types or produces in types


def kill_refused(state: str, terminal: Iterable[str], cascade: bool) -> bool:
    """``ExecutionController.killExecution``: refused (IllegalStateException → 409) only for a
    terminated execution **and** ``isOnKillCascade=false``; with the default ``true`` Kestra emits
    the kill event anyway and answers 202, and the terminated execution keeps its state."""
    return state in set(terminal) and not cascade


def merge_outputs(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> dict[str, Any]:
    """``MapUtils.merge``, as ``Execution.outputs()`` folds the outputs of the task runs in list
    order into the ``outputs`` variable: ``b`` over ``a`` key by key, a null in ``b`` never replacing
    a value, maps merged recursively, lists joined (``b``'s items not already in ``a`` appended),
    anything else ``b``'s. So a task that runs several times (a loop's child) reads as its runs
    merged: its latest scalars, but lists and maps of every run together."""
    result: dict[str, Any] = dict(a or {})
    for key, value_b in (b or {}).items():
        value_a = result.get(key)
        if value_b is None:
            result[key] = value_a
        elif value_a is None:
            result[key] = value_b
        elif isinstance(value_a, Mapping) and isinstance(value_b, Mapping):
            result[key] = merge_outputs(value_a, value_b)
        elif isinstance(value_a, list) and isinstance(value_b, list):
            result[key] = value_a + [item for item in value_b if item not in value_a]
        else:
            result[key] = value_b
    return result


def truthy(rendered: str | None) -> bool:
    """``TruthUtils.isTruthy``: an If's rendered condition is true unless null, "", "false", "0" or "-0"."""
    return rendered is not None and rendered not in ("false", "0", "-0", "")
