"""Tokens: what the settings configure, constant-time verification, fail-closed configuration, and
acting for people with the role the sign-in configuration gives them (capped by the token's)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from console.access import tokens as tokens_module
from console.access.auth import InvalidIdentity, Role
from console.access.tokens import (
    TOKEN_PREFIX,
    ActorNotAllowed,
    acting_identity,
    hash_token,
    load_tokens,
    new_token,
)
from console.settings import Secret, Settings, load_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def hashed(name: str, token: str, **extra) -> dict:
    return {name: {"sha256": hash_token(token), "identity": name, **extra}}


def test_nothing_configured_means_the_api_is_off(settings):
    registry = load_tokens(settings)
    assert not registry.enabled and registry.tokens == () and registry.problems == ()
    assert registry.verify("anything") is None


def test_the_environment_token_is_a_viewer_named_api_by_default(settings):
    registry = load_tokens(replace(settings, api_token=Secret("a-long-enough-token-value")))
    [token] = registry.tokens
    assert (token.name, token.identity.name, token.identity.role) == ("env", "api", Role.VIEWER)
    assert token.act_for_users is False
    assert registry.verify("a-long-enough-token-value") is token
    assert registry.verify("a-long-enough-token-valuE") is None
    assert registry.verify("") is None and registry.verify(None) is None
    assert registry.warnings == ()


def test_a_short_environment_token_works_with_a_warning_that_never_shows_it(settings):
    registry = load_tokens(replace(settings, api_token=Secret("t")))
    assert registry.verify("t") is not None
    assert len(registry.warnings) == 1 and "short (1 characters)" in registry.warnings[0]
    assert "'t'" not in registry.warnings[0]


def test_identity_and_role_of_the_environment_token_are_configurable(settings):
    registry = load_tokens(replace(settings, api_token=Secret("x" * 20), api_identity="ci", api_role="admin"))
    assert registry.tokens[0].identity.name == "ci" and registry.tokens[0].identity.role == Role.ADMIN


def test_hashed_tokens_from_secrets_toml(tmp_path):
    secrets = tmp_path / "secrets.toml"
    bot, ci = new_token(), new_token()
    secrets.write_text(
        f"""
[console_api.tokens.chatops]
sha256 = "{hash_token(bot)}"
role = "approver"
act_for_users = true
identity = "chatops-bot"

[console_api.tokens.ci]
sha256 = "{hash_token(ci).upper()}"
identity = "ci"
rate_per_minute = 30
burst = 5
"""
    )
    settings = load_settings(env={"CONSOLE_DATA_DIR": str(tmp_path)}, secrets_path=secrets)
    registry = load_tokens(settings)
    assert registry.problems == () and registry.enabled
    assert registry.verify(bot).identity.name == "chatops-bot"
    assert registry.verify(bot).act_for_users and registry.verify(bot).identity.role == Role.APPROVER
    found = registry.verify(ci)
    assert (found.name, found.identity.role, found.rate_per_minute, found.burst) == (
        "ci",
        Role.VIEWER,
        30.0,
        5,
    )
    assert bot.startswith(TOKEN_PREFIX) and len(bot) > 40
    assert settings.safe_dict()["api_tokens_configured"] == 2
    assert hash_token(bot) not in repr(settings.safe_dict())


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        ([1, 2], "[console_api]: must be a table"),
        ({"tokens": [{"sha256": "x"}]}, "[console_api.tokens]: must be a table"),
        ({"token": {}}, "unknown key(s) token"),
        ({"tokens": {"bot": "abc"}}, "[console_api.tokens.bot]: must be a table"),
        ({"tokens": {"bot": {"sha256": "abc"}}}, "[console_api.tokens.bot].sha256: must be 64 hex digits"),
        (
            {"tokens": {"bot": {"sha256": "a" * 64, "role": "root"}}},
            "[console_api.tokens.bot].role: unknown role",
        ),
        (
            {"tokens": {"bot": {"sha256": "a" * 64, "act_for_users": "yes"}}},
            "act_for_users: must be true or false",
        ),
        ({"tokens": {"bot": {"sha256": "a" * 64, "token": "plain"}}}, "only its sha256"),
        (
            {"tokens": {"bot": {"sha256": "a" * 64, "identity": "system:timeout"}}},
            "reserved for the console itself",
        ),
        ({"tokens": {"bot": {"sha256": "a" * 64, "burst": 0}}}, "burst: must be a positive whole number"),
        (
            {
                "tokens": {
                    "a": {"sha256": "a" * 64, "identity": "a"},
                    "b": {"sha256": "A" * 64, "identity": "b"},
                }
            },
            "tokens a and b are the same token",
        ),
    ],
)
def test_a_broken_configuration_fails_closed_and_names_the_key(settings, api, expected):
    registry = load_tokens(replace(settings, api=api, api_token=Secret("good-token-good-token")))
    assert any(expected in problem for problem in registry.problems), registry.problems
    assert not registry.enabled
    assert registry.verify("good-token-good-token") is None  # nothing is accepted, not even the good one
    assert "plain" not in " ".join(registry.problems)  # a pasted secret is never echoed


def test_verification_compares_every_token_in_constant_time(settings, monkeypatch):
    one, two, three = new_token(), new_token(), new_token()
    api = {"tokens": {**hashed("a", one), **hashed("b", two), **hashed("c", three)}}
    registry = load_tokens(replace(settings, api=api))
    calls = []
    real = tokens_module.hmac.compare_digest
    monkeypatch.setattr(tokens_module.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert registry.verify(one).name == "a"
    assert len(calls) == 3  # the first matched, the other two were still compared
    calls.clear()
    assert registry.verify("nope") is None and len(calls) == 3


def users_settings(settings: Settings) -> Settings:
    return replace(
        settings,
        auth={
            "users": {"alice": {"password_hash": "x", "role": "approver"}, "vic": {"role": "viewer"}},
            "oidc_roles": {"Root@Example.com": "admin"},
        },
    )


def bot_token(settings: Settings, role: str = "approver", act_for_users: bool = True):
    api = {"tokens": hashed("chatops", "bot-token-value-123456", role=role, act_for_users=act_for_users)}
    return load_tokens(replace(settings, api=api)).tokens[0]


def test_a_bot_acts_for_configured_people_with_their_configured_role(settings):
    settings = users_settings(settings)
    bot = bot_token(settings)
    alice = acting_identity(bot, " Alice ", settings)
    assert (alice.name, alice.role, alice.source) == ("Alice", Role.APPROVER, "api-token:chatops")
    assert acting_identity(bot, "vic", settings).role == Role.VIEWER
    root = acting_identity(bot, "root@example.com", settings)
    assert root.role == Role.APPROVER  # admin by configuration, capped by the bot's own role
    with pytest.raises(ActorNotAllowed, match="not a configured console user"):
        acting_identity(bot, "mallory", settings)
    with pytest.raises(InvalidIdentity, match="actor: required"):
        acting_identity(bot, None, settings)
    with pytest.raises(InvalidIdentity, match="system:"):
        acting_identity(bot, "system:timeout", settings)


def test_a_viewer_bot_cannot_approve_by_naming_an_approver(settings):
    settings = users_settings(settings)
    assert acting_identity(bot_token(settings, role="viewer"), "alice", settings).role == Role.VIEWER


def test_a_token_that_does_not_act_for_people_refuses_an_actor(settings):
    settings = users_settings(settings)
    token = bot_token(settings, act_for_users=False)
    assert acting_identity(token, None, settings) is token.identity
    with pytest.raises(ActorNotAllowed, match="may not act for other people"):
        acting_identity(token, "alice", settings)


def test_the_hash_helper_prints_a_new_token_and_its_table():
    done = subprocess.run(
        [sys.executable, "-m", "console.access.tokens", "hash"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    token = next(line.strip() for line in done.stdout.splitlines() if line.strip().startswith(TOKEN_PREFIX))
    assert f'sha256 = "{hash_token(token)}"' in done.stdout
    again = subprocess.run(
        [sys.executable, "-m", "console.access.tokens", "hash", "--stdin"],
        input=token + "\n",
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        check=False,
    )
    assert again.stdout.strip() == hash_token(token)
    bad = subprocess.run(
        [sys.executable, "-m", "console.access.tokens"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "usage" in bad.stderr
