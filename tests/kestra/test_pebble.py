"""The Pebble subset evaluates the flows' templates as Kestra 1.3 does: strict variables, the four
forms that tolerate absence, Kestra's printing and ``toJson`` (NON_NULL), and a clear refusal of
syntax outside the subset."""

from __future__ import annotations

import pytest

from console.engines.kestra.jackson import java_double, java_float, to_json
from console.engines.kestra.pebble import (
    PebbleError,
    PebbleSyntaxError,
    Read,
    UndefinedError,
    compile_template,
    render,
    render_value,
)

pytestmark = pytest.mark.kestra

CONTEXT = {"inputs": {"given": "x", "nothing": None, "empty": "", "doc": {"a": 1, "b": None}}, "outputs": {}}


@pytest.mark.parametrize(
    ("template", "missing"),
    [
        ("{{ trigger.body.service }}", "trigger"),  # a root variable the execution does not have
        ("{{ inputs.undeclared }}", "undeclared"),  # MapResolver: strict and !containsKey
        ("{{ inputs.nothing.name }}", "name"),  # an attribute of null
        ("{{ outputs.approval.onResume | toJson }}", "approval"),  # a task that never ran
        ("{{ inputs.undeclared is empty }}", "undeclared"),  # `is empty` does not tolerate it
        ("{{ inputs.undeclared is null }}", "undeclared"),
        ("{% if inputs.undeclared is not empty %}x{% endif %}", "undeclared"),
    ],
)
def test_reading_what_is_not_there_is_an_error(template: str, missing: str) -> None:
    with pytest.raises(UndefinedError) as info:
        render(template, CONTEXT)
    assert info.value.attribute == missing
    assert str(info.value) == f"Unable to find `{missing}` used in the expression `{template}` at line 1"


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("{{ inputs.nothing | toJson }}", "null"),  # present with a null value: no error
        ("[{{ inputs.nothing }}]", "[]"),  # null prints nothing
        ("{{ inputs.undeclared ?? 'd' }}", "d"),  # NullCoalescingExpression: absent...
        ("{{ inputs.nothing ?? 'd' }}", "d"),  # ...or null
        ("{{ inputs.undeclared ??? 'd' }}", "d"),  # UndefinedCoalescingExpression: absent only
        ("{{ inputs.nothing ??? 'd' }}", ""),
        ("{{ trigger.body.x ?? (inputs.undeclared ?? null) | toJson }}", "null"),
        ("{{ inputs.undeclared is defined }}/{{ inputs.given is not defined }}", "false/false"),
        ("{{ inputs.nothing is defined }}", "false"),  # DefinedTest: not null
        ("{{ inputs.undeclared | default('d') }}/{{ inputs.empty | default('d') }}", "d/d"),
        ("{{ inputs.empty is empty }}/{{ inputs.doc is empty }}", "true/false"),
        ("{{ inputs.doc | toJson }}", '{"a":1}'),  # Jackson NON_NULL
        ("{{ inputs.doc }}", '{"a":1}'),  # a printed map is JSON too (JsonWriter)
        ("{{ inputs.given == 'x' and not (inputs.given != 'x') }}", "true"),
        ("{{ inputs.nothing is empty ? '{}' : (inputs.nothing | toJson) }}", "{}"),
        ("{% if inputs.nothing %}a{% elseif inputs.given is not empty %}b{% else %}c{% endif %}", "b"),
        ("a {{- ' b ' -}} c{# a comment #}", "a b c"),
        ("{{ 1.0 }} {{ 0.0001 }} {{ true }} {{ [1, null] }}", "1.0 1.0E-4 true [1,null]"),
    ],
)
def test_what_tolerates_absence_and_how_values_print(template: str, rendered: str) -> None:
    assert render(template, CONTEXT) == rendered


def test_secret_is_the_callers_function() -> None:
    assert render("{{ secret('KEY') }}", {}, {"secret": lambda name: f"<{name}>"}) == "<KEY>"
    with pytest.raises(PebbleError, match="secret"):
        render("{{ secret('KEY') }}", {})


@pytest.mark.parametrize(
    "template",
    [
        "{{ a + b }}",
        "{{ a | upper }}",
        "{{ a is odd }}",
        "{{ now() }}",
        "{{ a.size() }}",
        "{% for x in y %}{% endfor %}",
        "{% set x = 1 %}",
        "{{ a",
        "{% if a %}",
        "{% endif %}",
        '{{ "#{a}" }}',
    ],
)
def test_syntax_outside_the_subset_is_refused_by_name(template: str) -> None:
    with pytest.raises(PebbleSyntaxError):
        compile_template(template)


def test_reads_say_which_reads_tolerate_absence() -> None:
    template = compile_template(
        "{{ inputs.a ?? trigger.body.b }} {{ (outputs.x.onResume ?? null) | toJson }} "
        "{{ inputs.c is defined }} {{ inputs.d | default(inputs.e) }} {{ execution.id }}"
    )
    assert template.reads() == [
        Read(("inputs", "a"), True),
        Read(("trigger", "body", "b"), False),
        Read(("outputs", "x", "onResume"), True),
        Read(("inputs", "c"), True),
        Read(("inputs", "d"), True),
        Read(("inputs", "e"), False),
        Read(("execution", "id"), False),
    ]


def test_render_value_renders_strings_inside_maps_and_lists_only() -> None:
    value = {"a": "{{ inputs.given }}", "b": ["{{ inputs.nothing }}", 3, True], "c": None, "d": "plain {"}
    assert render_value(value, CONTEXT) == {"a": "x", "b": ["", 3, True], "c": None, "d": "plain {"}


def test_java_number_printing() -> None:
    assert [java_double(v) for v in (1.0, 0.85, 1e-4, 12345678.0, -2.5e-5, 0.001)] == [
        "1.0", "0.85", "1.0E-4", "1.2345678E7", "-2.5E-5", "0.001",
    ]  # fmt: skip
    assert java_float(0.1234567891) == 0.12345679  # a FLOAT is 32 bits
    assert to_json({"a": None, "b": [None, {"c": None}]}) == '{"b":[null,{}]}'
