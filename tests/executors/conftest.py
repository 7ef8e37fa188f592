"""Fixtures for the executor tests: the contract-following deployer.

The demo-service tests reach the deployer only through ``deployer.url`` and the token in the
environment variable ``TOKEN_ENV``, and arrange the starting state through the deployer API itself
(``POST /deploy`` of the leaky version). To run them against the real deployer, this fixture is the
one thing to replace; the fault switches (``error``, ``ignore_changes``, ``never_ready``,
``answer_delay_s``) are then produced by real means (a version that never gets ready, ...).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.executors.servers import FakeDeployer, run_deployer

TOKEN_ENV = "EXECUTOR_TEST_DEPLOYER_TOKEN"
GOOD_VERSION = "v1.1.0"
LEAKY_VERSION = "v1.2.0-leak"


@pytest.fixture
def deployer_token(monkeypatch: pytest.MonkeyPatch) -> str:
    token = "tok-" + secrets.token_hex(16)
    monkeypatch.setenv(TOKEN_ENV, token)
    return token


@pytest.fixture
def deployer(deployer_token: str) -> Iterator[FakeDeployer]:
    """A deployer running the leaky version, deployed over the good one through the API."""
    with run_deployer(deployer_token, version="v1.0.0", previous_version=None) as fake:
        for version in (GOOD_VERSION, LEAKY_VERSION):
            answer = requests.post(
                f"{fake.url}/deploy",
                json={"version": version, "by": "alice"},
                headers={"Authorization": f"Bearer {deployer_token}"},
                timeout=5,
            )
            assert answer.status_code == 200, answer.text
        status = requests.get(
            f"{fake.url}/status", headers={"Authorization": f"Bearer {deployer_token}"}, timeout=5
        ).json()
        assert (status["version"], status["previous_version"]) == (LEAKY_VERSION, GOOD_VERSION)
        fake.requests.clear()
        yield fake


def result_text(result: Any) -> str:
    """Everything a result records, as one string (to look for secrets in)."""
    return json.dumps(result.to_dict(), sort_keys=True)
