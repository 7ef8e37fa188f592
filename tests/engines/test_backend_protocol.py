"""Both engines implement the whole Backend protocol (the console calls it without probing)."""

from __future__ import annotations

import inspect

import pytest

from console.engines.backend import Backend, BackendError
from console.engines.embedded.runner import EmbeddedEngine
from console.engines.kestra.backend import KestraBackend

PROTOCOL_METHODS = sorted(
    name for name, value in vars(Backend).items() if inspect.isfunction(value) and not name.startswith("_")
)


def test_the_protocol_lists_what_the_console_calls():
    assert {
        "health",
        "launch",
        "launch_scenario",
        "launch_deployment",
        "launch_incident",
        "search_executions",
        "get_execution",
        "execution_logs",
        "snapshot_document",
        "resume",
        "kill",
        "ui_link",
        "sync_flows",
        "close",
    } == set(PROTOCOL_METHODS)
    assert "name" in Backend.__annotations__


@pytest.mark.parametrize("engine", [EmbeddedEngine, KestraBackend])
@pytest.mark.parametrize("method", PROTOCOL_METHODS)
def test_each_engine_implements_each_method_with_a_compatible_signature(engine, method):
    wanted = inspect.signature(getattr(Backend, method)).parameters
    given = inspect.signature(getattr(engine, method)).parameters
    for name, param in wanted.items():
        assert name in given, f"{engine.__name__}.{method} lacks parameter {name!r}"
        assert given[name].kind == param.kind, f"{engine.__name__}.{method}({name}) is {given[name].kind}"
        if param.default is not inspect.Parameter.empty:
            assert given[name].default == param.default, f"{engine.__name__}.{method}({name}) default"
    extra = [p for n, p in given.items() if n not in wanted]
    assert all(p.default is not inspect.Parameter.empty for p in extra), (
        f"{engine.__name__}.{method}: {extra}"
    )
    assert isinstance(engine.name, str)


def test_the_embedded_engine_has_no_flows_to_sync(settings):
    engine = EmbeddedEngine(settings, synchronous=True)
    try:
        with pytest.raises(BackendError, match="flow sync is for Kestra"):
            engine.sync_flows()
    finally:
        engine.close()
