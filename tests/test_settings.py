from __future__ import annotations

from pathlib import Path

import pytest

from console.domain.redaction import mask_url
from console.settings import Secret, SettingsError, load_settings


def test_defaults_are_embedded_and_rules(tmp_path: Path) -> None:
    settings = load_settings(env={}, secrets_path=tmp_path / "missing.toml")
    assert settings.backend_name == "embedded"
    assert settings.analyzer_name == "rules"


def test_env_wins_over_secrets_and_secrets_never_print(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        'TOGETHER_API_KEY = "tok-from-file"\nKESTRA_URL = "http://file:8080"\n'
        'AUTO_APPROVE_CONFIDENCE = 0.9\n[console_auth.users.alice]\npassword_hash = "x"\nrole = "admin"\n'
        '[auth]\nclient_id = "abc"\n'
    )
    settings = load_settings(
        env={"KESTRA_URL": "http://env:8080", "KESTRA_PASSWORD": "pw-xyz"}, secrets_path=secrets
    )
    assert settings.kestra_url == "http://env:8080"
    assert settings.together_api_key.get() == "tok-from-file"
    assert settings.auto_approve_confidence == 0.9
    assert settings.oidc_configured and "alice" in settings.auth["users"]
    text = repr(settings) + str(settings.safe_dict())
    assert "tok-from-file" not in text and "pw-xyz" not in text
    assert settings.safe_dict()["together_api_key"] == "set"
    assert f"{Secret('abc')}" == "Secret('***')"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTO_APPROVE_CONFIDENCE": "high"}, "AUTO_APPROVE_CONFIDENCE must be a number, got 'high'"),
        # nan compares false with everything, so it would pass every bound written as `<= 0`
        ({"LIVE_POLL_S": "nan"}, "LIVE_POLL_S must be a number, got 'nan'"),
        ({"APPROVAL_TIMEOUT_MINUTES": "NaN"}, "APPROVAL_TIMEOUT_MINUTES must be a number"),
        ({"CONSOLE_SESSION_HOURS": "inf"}, "CONSOLE_SESSION_HOURS must be a number"),
        ({"AUTO_APPROVE_CONFIDENCE": "1.5"}, "between 0 and 1"),
        ({"APPROVAL_TIMEOUT_MINUTES": "0"}, "positive"),
    ],
)
def test_bad_values_give_one_clear_message(tmp_path: Path, env: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env=env, secrets_path=tmp_path / "none.toml")


def test_malformed_secrets_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "secrets.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(SettingsError, match=r"secrets\.toml could not be read"):
        load_settings(env={}, secrets_path=bad)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@kestra.example:8080/api", "https://***@kestra.example:8080/api"),
        ("http://token@host/", "http://***@host/"),
        ("https://host/v1?api_key=sk-123&tenant=main", "https://host/v1?api_key=***&tenant=***"),
        ("https://host/path#access_token=abc", "https://host/path#***"),
        ("https://a:b@host/?token=t#f", "https://***@host/?token=***#***"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("", ""),
        ("user:pw@host:1", "***@host:1"),  # no scheme: still nothing before the @
        ("http://[::1", "(not a valid URL)"),
        ("http://host:notaport/", "(not a valid URL)"),
    ],
)
def test_mask_url_hides_credentials(url, shown):
    assert mask_url(url) == shown


def test_safe_dict_hides_credentials_in_every_url(tmp_path):
    settings = load_settings(
        env={
            "KESTRA_URL": "https://admin:hunter2@kestra.example/?token=abc",
            "KESTRA_UI_URL": "https://ui:pw2@kestra.example/ui",
            "LLM_BASE_URL": "https://k:sk-secret@llm.example/v1?key=sk-q",
            "CONSOLE_API_TOKEN": "api-secret",
        },
        secrets_path=tmp_path / "none.toml",
    )
    shown = settings.safe_dict()
    assert shown["kestra_url"] == "https://***@kestra.example/?token=***"
    assert shown["kestra_ui_url"] == "https://***@kestra.example/ui"
    assert shown["llm_base_url"] == "https://***@llm.example/v1?key=***"
    assert shown["api_token"] == "set"
    text = repr(shown)
    for secret in ("hunter2", "abc", "pw2", "sk-secret", "sk-q", "api-secret"):
        assert secret not in text
