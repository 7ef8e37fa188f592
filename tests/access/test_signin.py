"""Which sign-in applies, read from secrets.toml as written: a configuration that cannot be read as
meant is an error naming the problem (never demo mode), and a picked demo identity is off wherever
the console acts for real unless CONSOLE_DEMO_IDENTITY says otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from console.access.approvals import ApprovalService
from console.access.auth import Identity, PermissionDenied, Role, hash_password
from console.access.signin import live_reasons, sign_in
from console.engines.embedded.runner import EmbeddedEngine
from console.settings import Settings, SettingsError, load_settings

HASH = hash_password("Pass-word-1", iterations=1000)
GOOD_USER = f'[console_auth.users.alice]\npassword_hash = "{HASH}"\nrole = "approver"\n'
OIDC = (
    '[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\ncookie_secret = "c"\n'
    'client_id = "console"\nclient_secret = "s"\n'
    'server_metadata_url = "https://id.example.com/.well-known/openid-configuration"\n'
)


def settings_from(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "secrets.toml"
    path.write_text(text)
    return load_settings(env={"CONSOLE_DATA_DIR": str(tmp_path / "data"), **env}, secrets_path=path)


@contextmanager
def pending_approval(settings: Settings) -> Iterator[tuple[ApprovalService, str]]:
    """The approval service on an embedded engine with one approval pending (memory-leak)."""
    engine = EmbeddedEngine(settings, max_workers=1)
    try:
        execution = engine.run_sync(scenario="memory-leak", triggered_by="seed", timeout=60)
        service = ApprovalService(engine.store, engine, settings)
        yield service, service.for_execution(execution.id)["id"]
    finally:
        engine.close()


# Each broken shape, and a word its one line must contain (naming the problem or the fix).
BROKEN = {
    "users as an array of tables": (
        f'[[console_auth.users]]\nname = "alice"\npassword_hash = "{HASH}"\nrole = "admin"\n',
        "[[console_auth.users]] is an array",
    ),
    "console_auth not a table": (
        'console_auth = "alice:admin"\n',
        "console_auth in secrets.toml is a string",
    ),
    "console_auth an array of tables": ('[[console_auth]]\nmode = "password"\n', "[[console_auth]]"),
    "users not a table": ('[console_auth]\nusers = "alice"\n', "console_auth.users is a string"),
    "auth without client_id": (
        '[auth]\nredirect_uri = "http://x/oauth2callback"\ncookie_secret = "c"\n',
        "[auth] has no client_id",
    ),
    "auth not a table": ('auth = "google"\n', "[auth] in secrets.toml is a string"),
    "auth without cookie_secret": (
        OIDC.replace('cookie_secret = "c"\n', ""),
        "[auth].cookie_secret: missing",
    ),
    "user without a role": (
        f'[console_auth.users.alice]\npassword_hash = "{HASH}"\n',
        "console_auth.users.alice.role: missing",
    ),
    "user with an unknown role": (GOOD_USER.replace('"approver"', '"root"'), "role 'root' is not viewer"),
    "user without a hash": ('[console_auth.users.alice]\nrole = "admin"\n', "password_hash: missing"),
    "user with a plain password": (
        '[console_auth.users.alice]\npassword = "hunter2"\nrole = "admin"\n',
        "never the password",
    ),
    "user with a malformed hash": (
        '[console_auth.users.alice]\npassword_hash = "md5$x"\nrole = "admin"\n',
        "not a pbkdf2_sha256 hash",
    ),
    "user not a table": ('[console_auth.users]\nalice = "admin"\n', "must be a table"),
    "user name that cannot sign in": (
        GOOD_USER.replace("users.alice", 'users."system:root"'),
        "not a usable name",
    ),
    "a typo in a key": (
        GOOD_USER.replace("[console_auth.users.alice]", "[console_auth.user.alice]"),
        "console_auth.user: unknown key",
    ),
    "an unknown mode": (GOOD_USER + '[console_auth]\nmode = "sso"\n', "is not password, oidc or demo"),
    "password mode without users": ('[console_auth]\nmode = "password"\n', "no user is configured"),
    "oidc mode without [auth]": ('[console_auth]\nmode = "oidc"\n', "[auth] table is not configured"),
    "oidc roles not a table": (OIDC + '[console_auth]\noidc_roles = ["a@x"]\n', "oidc_roles must be a table"),
    "an oidc role unknown": (OIDC + '[console_auth.oidc_roles]\n"a@x.com" = "boss"\n', "role 'boss'"),
}


@pytest.mark.parametrize("shape", list(BROKEN))
def test_broken_configuration_is_an_error_never_demo(tmp_path, shape):
    text, expected = BROKEN[shape]
    policy = sign_in(settings_from(tmp_path, text))
    assert policy.mode == "broken", (shape, policy)
    assert not policy.demo_allowed and not policy.can_sign_in
    assert any(expected in problem for problem in policy.problems), policy.problems
    assert all("\n" not in problem for problem in policy.problems)
    assert "nobody can decide" in policy.error_line()


@pytest.mark.parametrize(
    "shape", ["users as an array of tables", "auth without client_id", "user without a role"]
)
def test_the_approval_service_refuses_everyone_while_it_is_broken(tmp_path, shape):
    with pending_approval(settings_from(tmp_path, BROKEN[shape][0])) as (service, approval_id):
        for source in ("password", "oidc", "demo", "cli"):
            with pytest.raises(PermissionDenied, match="sign-in configuration is broken"):
                service.vote(approval_id, Identity("zoe", Role.ADMIN, source=source), True, "")
        assert service.get(approval_id)["status"] == "pending"


def test_unreadable_settings_fail_closed():
    broken = Settings(load_error="secrets.toml could not be read: Expected '=' (at line 3)")
    policy = sign_in(broken)
    assert policy.mode == "broken" and "could not be read" in policy.problems[0]


def test_a_secrets_file_that_is_not_toml_is_a_settings_error_with_the_line(tmp_path):
    with pytest.raises(SettingsError, match="could not be read"):
        settings_from(tmp_path, "[console_auth.users.alice\nrole = 1\n")


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("", "demo"),
        (GOOD_USER, "password"),
        (OIDC, "oidc"),
        (OIDC + '[console_auth.oidc_roles]\n"a@x.com" = "approver"\n', "oidc"),
        (GOOD_USER + '[console_auth]\nmode = "demo"\n', "demo"),
    ],
)
def test_usable_configurations(tmp_path, text, mode):
    assert sign_in(settings_from(tmp_path, text)).mode == mode


def test_oidc_with_a_named_provider(tmp_path):
    text = (
        '[auth]\nredirect_uri = "http://x/oauth2callback"\ncookie_secret = "c"\n[auth.google]\n'
        'client_id = "id"\nclient_secret = "s"\nserver_metadata_url = "https://accounts.google.com/x"\n'
    )
    assert sign_in(settings_from(tmp_path, text)).mode == "oidc"
    incomplete = text.replace('client_secret = "s"\n', "")
    policy = sign_in(settings_from(tmp_path, incomplete))
    assert policy.broken and policy.problems[0].startswith("[auth.google].client_secret: missing")


def services_file(tmp_path: Path, executor: str | None) -> Path:
    path = tmp_path / "services.yaml"
    section = f"    executor: {{type: {executor}, url: 'http://127.0.0.1:9'}}\n" if executor else ""
    path.write_text(
        "services:\n  demo-service:\n    environment: live-demo\n"
        "    logs: {type: jsonl, path: demo.log}\n" + section
    )
    return path


@pytest.mark.parametrize(
    ("env", "live"),
    [
        ({}, ()),
        ({"KESTRA_URL": "http://127.0.0.1:9"}, ("Kestra (KESTRA_URL)",)),
        ({"CONSOLE_API_TOKEN": "t0k3n"}, ("the HTTP API (CONSOLE_API_TOKEN)",)),
    ],
)
def test_what_makes_the_console_act_for_real(tmp_path, env, live):
    settings = settings_from(tmp_path, "", **env)
    assert live_reasons(settings) == live
    policy = sign_in(settings)
    assert policy.mode == ("none" if live else "demo")
    assert (policy.error_line() != "") == bool(live)


def test_api_tokens_in_secrets_count_as_live(tmp_path):
    settings = settings_from(tmp_path, '[console_api.tokens]\nchatops = "pbkdf2_sha256$1$a$b"\n')
    assert live_reasons(settings) == ("the HTTP API ([console_api] tokens)",)
    assert sign_in(settings).mode == "none"


@pytest.mark.parametrize(
    ("executor", "live"), [(None, False), ("simulated", False), ("demo-service", True), ("kubectl", True)]
)
def test_a_live_executor_in_the_services_file_turns_demo_identity_off(tmp_path, executor, live):
    path = services_file(tmp_path, executor)
    settings = settings_from(tmp_path, "", CONSOLE_SERVICES_FILE=str(path))
    reasons = live_reasons(settings)
    assert bool(reasons) == live, reasons
    if live:
        assert reasons == (f"a live executor ({executor} for demo-service in CONSOLE_SERVICES_FILE)",)
    assert sign_in(settings).mode == ("none" if live else "demo")


def test_an_unreadable_services_file_fails_closed(tmp_path):
    path = tmp_path / "services.yaml"
    path.write_text("services: [not, a, mapping]\n")
    settings = settings_from(tmp_path, "", CONSOLE_SERVICES_FILE=str(path))
    [reason] = live_reasons(settings)
    assert reason.startswith("CONSOLE_SERVICES_FILE cannot be read")
    assert sign_in(settings).mode == "none"
    missing = settings_from(tmp_path, "", CONSOLE_SERVICES_FILE=str(tmp_path / "absent.yaml"))
    assert live_reasons(missing) == ()


def test_demo_identity_only_when_explicitly_enabled_on_a_live_console(tmp_path):
    off = sign_in(settings_from(tmp_path, "", KESTRA_URL="http://127.0.0.1:9"))
    assert off.mode == "none" and not off.demo_allowed
    on = sign_in(settings_from(tmp_path, "", KESTRA_URL="http://127.0.0.1:9", CONSOLE_DEMO_IDENTITY="1"))
    assert on.mode == "demo" and on.demo_on_live
    asked = sign_in(settings_from(tmp_path, '[console_auth]\nmode = "demo"\n', KESTRA_URL="http://x"))
    assert asked.mode == "none" and "CONSOLE_DEMO_IDENTITY=1" in asked.notes[0]
    plain_demo = sign_in(settings_from(tmp_path, ""))
    assert plain_demo.mode == "demo" and not plain_demo.demo_on_live
    with pytest.raises(SettingsError, match="CONSOLE_DEMO_IDENTITY must be 1/true/yes/on"):
        settings_from(tmp_path, "", CONSOLE_DEMO_IDENTITY="maybe")


def test_a_configured_sign_in_wins_over_the_demo_setting(tmp_path):
    settings = settings_from(tmp_path, GOOD_USER, KESTRA_URL="http://x", CONSOLE_DEMO_IDENTITY="1")
    assert sign_in(settings).mode == "password"


def test_the_service_refuses_a_demo_identity_where_demo_is_off(tmp_path):
    settings = settings_from(tmp_path, "", CONSOLE_API_TOKEN="t")  # the embedded engine, API on
    with pending_approval(settings) as (service, approval_id):
        with pytest.raises(PermissionDenied, match="demo identity cannot decide here"):
            service.vote(approval_id, Identity("zoe", Role.ADMIN, source="demo"), True, "")
        assert service.vote(approval_id, Identity("zoe", Role.ADMIN, source="password"), True, "").resumed
