"""The Live section's deployer client against the contract-following deployer (tests/executors/
servers.py) and a local server answering what a broken deployer would: every failure is one line
that names the deployer (and, for a 401, the token's variable), never the token."""

from __future__ import annotations

import pytest

from console.executors.base import ExecutorConfigError
from console.executors.deployer_api import DeployerClient, DeployerUnavailable
from tests.executors.conftest import GOOD_VERSION, LEAKY_VERSION, TOKEN_ENV
from tests.executors.servers import FakeDeployer, Reply, Request, serve


def client(url: str) -> DeployerClient:
    return DeployerClient.from_executor_config({"type": "demo-service", "url": url, "token_env": TOKEN_ENV})


def test_status_versions_deployments_and_a_deploy_as_a_person(deployer: FakeDeployer, deployer_token: str):
    api = client(deployer.url)
    status = api.status()
    assert (status["version"], status["previous_version"]) == (LEAKY_VERSION, GOOD_VERSION)
    assert [d["version"] for d in api.deployments(limit=2)] == [LEAKY_VERSION, GOOD_VERSION]
    assert GOOD_VERSION in [v["version"] for v in api.versions()]
    record = api.deploy(GOOD_VERSION, by="carol", reason="from the Live section")
    assert (record["version"], record["previous_version"]) == (GOOD_VERSION, LEAKY_VERSION)
    assert record["by"] == "carol"
    assert api.status()["version"] == GOOD_VERSION
    [deploy] = [r for r in deployer.requests if r.method == "POST"]
    assert deploy.path == "/deploy" and deploy.headers["authorization"] == f"Bearer {deployer_token}"
    assert deploy.json() == {"version": GOOD_VERSION, "by": "carol", "reason": "from the Live section"}


NOT_JSON = "deployer answered POST /deploy with something other than a JSON object"


@pytest.mark.parametrize(
    ("reply", "line"),
    [
        (Reply(401, {"error": "bad"}), f"deployer answered 401: bad (check the token in {TOKEN_ENV})"),
        (Reply(409, {"error": "a deploy is in progress"}), "deployer answered 409: a deploy is in progress"),
        (Reply(404, {"error": "unknown version v9"}), "deployer answered 404: unknown version v9"),
        (Reply(200, "<html>proxy login</html>"), NOT_JSON),
        (Reply(200, {"ok": True}), "deployer answered POST /deploy without a deployment record"),
    ],
)
def test_a_failed_deploy_is_one_line_without_the_token(reply: Reply, line: str, deployer_token: str):
    def handler(_: Request) -> Reply:
        return reply

    with serve(handler) as url, pytest.raises(DeployerUnavailable) as raised:
        client(url).deploy("v9", by="carol")
    assert str(raised.value) == line
    assert deployer_token not in str(raised.value)


def test_no_token_and_no_deployer_are_one_line_each(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(DeployerUnavailable) as raised:
        client("http://127.0.0.1:9").status()
    assert str(raised.value) == f"deployer token missing: environment variable {TOKEN_ENV} is not set"
    monkeypatch.setenv(TOKEN_ENV, "tok-0123456789")
    with pytest.raises(DeployerUnavailable) as raised:
        client("http://127.0.0.1:9").versions()
    assert str(raised.value) == "deployer unreachable at http://127.0.0.1:9: connection refused"


def test_a_section_without_a_url_is_a_config_error():
    with pytest.raises(ExecutorConfigError):
        DeployerClient.from_executor_config({"type": "demo-service", "token_env": TOKEN_ENV})
