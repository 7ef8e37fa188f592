"""Issue 18 through the command line as a user types it (``python -m console approve``, ``run
--approve``) on a console with password users and API tokens (so it acts for real): a name alone
decides nothing, the identity and the role come from the credential (a token, checked like the
API's, or the named user's password, checked and limited like the sign-in form), and every refusal
is one line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.access.auth import hash_password
from console.access.tokens import hash_token
from console.settings import load_settings
from console.storage import Store
from tests.access.test_identity_attacks import CRITICAL_SCENARIO, approval_row, one_line_error, seed

pytestmark = [pytest.mark.identity, pytest.mark.slow]

ALICE_1, ALICE_2 = "alice-token-one-0123456789abcdef", "alice-token-two-0123456789abcdef"


def password_of(name: str) -> str:
    return f"{name}-pass-phrase"


def live_console(cli, tmp_path: Path) -> None:
    """Password users bob (approver) and dave (viewer), and two API tokens of alice: the console acts
    for real (the HTTP API is configured), so demo identities are off."""
    users = "".join(
        f'[console_auth.users.{name}]\n'
        f'password_hash = "{hash_password(password_of(name), iterations=1000)}"\nrole = "{role}"\n'
        for name, role in (("bob", "approver"), ("dave", "viewer"))
    )
    tokens = "".join(
        f'[console_api.tokens.{key}]\nsha256 = "{hash_token(token)}"\nrole = "approver"\nidentity = "alice"\n'
        for key, token in (("alice-laptop", ALICE_1), ("alice-ci", ALICE_2))
    )
    secrets = tmp_path / "live-secrets.toml"
    secrets.write_text(users + tokens)
    cli.env["CONSOLE_SECRETS"] = str(secrets)


def audit_of(cli, approval_id: str) -> list[dict]:
    return approval_row(cli.env, approval_id)[2]


def test_a_name_alone_decides_nothing_where_the_console_acts_for_real(cli, tmp_path):
    live_console(cli, tmp_path)
    approval = seed(cli.env, requested_by="ci-bot")
    for name in ("mallory", "bob"):
        line = one_line_error(cli("approve", approval["id"], "--as", name))
        assert "needs a credential" in line and "--token" in line and "--password" in line, line
    row, votes, _ = approval_row(cli.env, approval["id"])
    assert row["status"] == "pending" and votes == []


def test_the_role_comes_from_the_password_not_from_the_command_line(cli, tmp_path):
    live_console(cli, tmp_path)
    approval = seed(cli.env, requested_by="ci-bot")
    viewer = cli("approve", approval["id"], "--as", "dave", "--password", stdin=password_of("dave") + "\n")
    assert "dave has the viewer role and cannot approve" in one_line_error(viewer)
    [refused] = [r for r in audit_of(cli, approval["id"]) if r["event"] == "approval.refused"]
    assert refused["actor"] == "dave" and refused["detail"]["role"] == "viewer"
    wrong = cli("approve", approval["id"], "--as", "mallory", "--password", stdin="guess\n")
    assert "unknown user or wrong password" in one_line_error(wrong)
    approved = cli("approve", approval["id"], "--as", "bob", "--password", stdin=password_of("bob") + "\n")
    assert approved.returncode == 0, approved.stderr
    assert (
        "approved by bob" in approved.stderr and password_of("bob") not in approved.stderr + approved.stdout
    )
    [vote] = [r for r in audit_of(cli, approval["id"]) if r["event"] == "approval.approved"]
    assert vote["actor"] == "bob" and vote["detail"]["role"] == "approver"


def test_a_critical_action_takes_two_people_however_many_names_or_tokens_one_has(cli, tmp_path):
    live_console(cli, tmp_path)
    approval = seed(cli.env, requested_by="ci-bot", scenario=CRITICAL_SCENARIO)
    assert approval["required_approvals"] == 2
    for name in ("mallory", "mallory2"):
        assert "needs a credential" in one_line_error(cli("approve", approval["id"], "--as", name))
    cli.env["CONSOLE_CLI_TOKEN"] = ALICE_1
    first = cli("approve", approval["id"])
    assert first.returncode == 0 and "1 more approver(s) needed" in first.stderr, first.stderr
    cli.env["CONSOLE_CLI_TOKEN"] = ALICE_2  # alice's other token: still alice
    assert "alice already voted" in one_line_error(cli("approve", approval["id"]))
    del cli.env["CONSOLE_CLI_TOKEN"]
    bad = cli("approve", approval["id"], "--token", stdin="not-a-token\n")
    assert "the token is not valid" in one_line_error(bad)
    second = cli("approve", approval["id"], "--as", "bob", "--password", stdin=password_of("bob") + "\n")
    assert second.returncode == 0, second.stderr
    row, votes, _ = approval_row(cli.env, approval["id"])
    assert row["status"] == "approved" and [v["actor"] for v in votes] == ["alice", "bob"]


def test_run_approve_needs_a_credential_too(cli, tmp_path):
    live_console(cli, tmp_path)
    line = one_line_error(cli("run", "memory-leak", "--approve", "--decide-as", "mallory"))
    assert "needs a credential" in line
    done = cli(
        "run", "memory-leak", "--approve", "--decide-as", "bob", "--password", stdin=password_of("bob") + "\n"
    )
    assert done.returncode == 0, done.stderr
    assert "approved by bob" in done.stderr


def test_command_line_passwords_share_the_sign_in_limits_and_are_audited(cli, tmp_path):
    live_console(cli, tmp_path)
    approval = seed(cli.env, requested_by="ci-bot")
    wrong = cli("approve", approval["id"], "--as", "bob", "--password", stdin="nope\n")
    assert "unknown user or wrong password" in one_line_error(wrong)
    settings = load_settings(env=cli.env)
    store = Store(settings.db_path)
    try:
        [failed] = [r for r in store.audit.trail(limit=50) if r["event"] == "signin.failed"]
        assert failed["actor"] == "bob" and failed["detail"]["via"] == "command line"
        assert "nope" not in str(failed)
        # bob has failed often lately (the same counts the sign-in form keeps, in the store)
        with store.db.write() as conn:
            store.sign_in_failures.set_in(
                conn, "user:bob", failures=9, last_at=time.time(), locked_until=time.time() + 600
            )
    finally:
        store.close()
    locked = cli("approve", approval["id"], "--as", "BOB ", "--password", stdin=password_of("bob") + "\n")
    assert "too many failed sign-ins" in one_line_error(locked)
    assert approval_row(cli.env, approval["id"])[1] == []
