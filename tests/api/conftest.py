"""Fixtures of the API tests: settings with a token, the console's parts wired as the server wires
them (embedded engine, approval service), and an in-process client of the API."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.applications import Starlette

with warnings.catch_warnings():
    # Starlette 1.10 prefers the httpx2 package for its TestClient; httpx (installed) works the same
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from console.api import api_routes
from console.api.guard import Guard
from console.api.health import HealthChecker
from console.inbound import Inbound
from console.runtime import EmbeddedRuntime, Services, embedded_runtime
from console.settings import Secret, Settings
from tests.telemetry.conftest import local_server  # noqa: F401  (a fixture: loopback HTTP stubs)

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    """One token (CONSOLE_API_TOKEN) acting as ``api`` with the approver role."""
    return replace(settings, api_token=Secret(TOKEN), api_role="approver")


@pytest.fixture
def runtime(api_settings: Settings) -> Iterator[EmbeddedRuntime]:
    rt = embedded_runtime(api_settings, max_workers=2)
    yield rt
    rt.close()


def services_of(runtime: EmbeddedRuntime, settings: Settings | None = None) -> Services:
    inbound = runtime.inbound
    if settings is not None and inbound is not None:
        inbound = Inbound(runtime.store, runtime.engine, settings, local=runtime.engine)
    return Services(
        settings or runtime.settings, runtime.store, runtime.engine, runtime.approvals, inbound=inbound
    )


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """``make_client(services, **parts)``: a client of the API as server.py mounts it (``/api``)."""
    clients: list[TestClient] = []

    def make(services: Services, **parts: Any) -> TestClient:
        parts.setdefault("health", HealthChecker(cache_s=0.0, llm_cache_s=0.0, timeout_s=1.0))
        parts.setdefault("guard", Guard())
        app = Starlette(routes=api_routes(lambda: services, **parts))
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(runtime: EmbeddedRuntime, make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(services_of(runtime))
