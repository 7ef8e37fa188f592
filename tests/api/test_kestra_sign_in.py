"""Issue 12's last "done when", on a real server: the console started with ``KESTRA_URL`` set and no
identity configured (no users, no OIDC; only API tokens) lists the run Kestra paused, but nobody can
approve it through the API — not a token acting for a person nobody configured, not a viewer token —
until a sign-in is configured; then a configured approver can, and Kestra resumes. (The pages'
side of the same rule: tests/ui/test_sign_in.py.)"""

from __future__ import annotations

import time

import pytest
import requests

from console.access.auth import hash_password
from console.access.tokens import hash_token
from console.engines.kestra.backend import KestraBackend
from console.settings import Secret, Settings
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra
from tests.waiting import patience

pytestmark = pytest.mark.slow

CHATOPS = "chatops-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"

TOKENS = (
    "[console_api.tokens.chatops]\n"
    f'sha256 = "{hash_token(CHATOPS)}"\n'
    'role = "approver"\n'
    'identity = "chatops-bot"\n'
    "act_for_users = true\n\n"
    "[console_api.tokens.reader]\n"
    f'sha256 = "{hash_token(READER)}"\n'
    'identity = "reader"\n'
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def pending(url: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + patience(timeout)
    while True:
        listed = requests.get(f"{url}/api/approvals", headers=bearer(READER), timeout=10).json()
        if listed.get("approvals") or time.monotonic() > deadline:
            assert listed.get("approvals"), listed
            return listed["approvals"][0]
        time.sleep(0.5)


def test_on_kestra_nobody_approves_through_the_api_until_a_sign_in_is_configured(tmp_path, start_console):
    fake = FakeKestra(username=USER, password=PASSWORD, settings=Settings(data_dir=tmp_path / "fake")).start()
    try:
        fake.deploy_dir(FLOWS_DIR)
        launcher = KestraBackend(
            Settings(kestra_url=fake.url, kestra_username=USER, kestra_password=Secret(PASSWORD))
        )
        execution_id = launcher.launch_scenario("memory-leak", "ci-bot")
        launcher.close()
        assert fake.wait_state(execution_id, {"PAUSED", "FAILED"})["state"]["current"] == "PAUSED"
        kestra = {
            "KESTRA_URL": fake.url,
            "KESTRA_USERNAME": USER,
            "KESTRA_PASSWORD": PASSWORD,
            "KESTRA_MIRROR_INTERVAL_S": "0.5",
        }
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(TOKENS, encoding="utf-8")  # API tokens, but no users and no OIDC
        console = start_console(CONSOLE_SECRETS=str(secrets), **kestra)
        approval = pending(console.url)
        assert approval["execution_id"] == execution_id and approval["status"] == "pending"
        decide = f"{console.url}/api/approvals/{approval['id']}/decision"
        for token, body, why in (
            (CHATOPS, {"decision": "approve", "actor": "carol"}, "carol is not a configured console user"),
            (CHATOPS, {"decision": "approve"}, "actor: required"),
            (READER, {"decision": "approve"}, "viewer"),
        ):
            answer = requests.post(decide, json=body, headers=bearer(token), timeout=10)
            assert answer.status_code in (400, 403) and why in answer.json()["error"], answer.text
        assert fake.executions[execution_id]["state"]["current"] == "PAUSED"
        console.stop()

        # a sign-in configured (bob, an approver with a password): the same request now decides
        secrets.write_text(
            TOKENS + f'\n[console_auth.users.bob]\npassword_hash = "{hash_password("bob-pass-1234")}"\n'
            'role = "approver"\n',
            encoding="utf-8",
        )
        console = start_console(CONSOLE_SECRETS=str(secrets), **kestra)
        approval = pending(console.url)
        decided = requests.post(
            f"{console.url}/api/approvals/{approval['id']}/decision",
            json={"decision": "approve", "actor": "bob", "comment": "leak confirmed"},
            headers=bearer(CHATOPS),
            timeout=10,
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["actor"] == "bob" and decided.json()["resumed"] is True
        assert fake.wait_state(execution_id, {"SUCCESS", "FAILED"})["state"]["current"] == "SUCCESS"
    finally:
        fake.stop()
