"""Issue 18, look-alike names: identities compare after Unicode TR39 confusable folding, and a name
that mixes scripts (a Cyrillic ``о`` inside a Latin ``bob``) is refused wherever someone acts."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.access.auth import InvalidIdentity, hash_password, validate_name
from console.access.signin import sign_in
from console.domain.names import InvalidName, canonical_name, same_person, skeleton
from console.settings import load_settings

pytestmark = [pytest.mark.identity]

CYRILLIC_BOB = "b\u043eb"  # Cyrillic small o


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (CYRILLIC_BOB, "bob"),
        ("\u0440\u0430\u0443\u0440\u0430l", "paypal"),  # Cyrillic er, a, u... and a Latin l
        ("aIice", "alice"),  # a capital I looks like a small l
        ("ALICE", "alice"),
        ("rnary", "mary"),  # a multi-character prototype
        ("\uff42\uff4f\uff42", "BOB"),  # full width
    ],
)
def test_names_that_look_alike_are_one_person(a, b):
    assert same_person(a, b) and same_person(b, a)


@pytest.mark.parametrize(("a", "b"), [("alice", "bob"), ("bob", "bobby"), ("ana", "anna"), ("", "")])
def test_names_that_differ_stay_different(a, b):
    assert not same_person(a, b)


def test_the_skeleton_follows_unicode_confusables():
    assert skeleton("\u0430") == skeleton("a")  # Cyrillic a
    assert skeleton("\u03bf") == skeleton("o")  # Greek omicron
    assert skeleton("paypal") == "paypal"  # a prototype maps to itself


@pytest.mark.parametrize(
    ("name", "scripts"),
    [
        (CYRILLIC_BOB, "Cyrillic and Latin"),
        ("\u0430lice", "Cyrillic and Latin"),
        ("\u03b1dmin", "Greek and Latin"),
    ],
)
def test_a_name_that_mixes_scripts_is_refused_in_one_line(name, scripts):
    with pytest.raises(InvalidName, match=f"cannot mix scripts \\({scripts}\\)"):
        canonical_name(name)
    with pytest.raises(InvalidIdentity, match="mix scripts"):
        validate_name(name)


@pytest.mark.parametrize(
    "name", ["\u0431\u043e\u0440\u0438\u0441", "\u7530\u4e2d\u3055\u3093", "\u00c9mile", "jos\u00e9-1"]
)
def test_names_in_one_script_or_an_allowed_mix_are_fine(name):
    assert canonical_name(name) == name


def test_a_sign_in_file_with_two_users_who_look_alike_is_broken(tmp_path: Path):
    digest = hash_password("pw-pw-pw-1", iterations=1000)
    path = tmp_path / "secrets.toml"
    path.write_text(
        f'[console_auth.users.alice]\npassword_hash = "{digest}"\nrole = "viewer"\n'
        f'[console_auth.users.aIice]\npassword_hash = "{digest}"\nrole = "admin"\n'
    )
    policy = sign_in(load_settings(env={"CONSOLE_DATA_DIR": str(tmp_path)}, secrets_path=path))
    assert policy.broken
    assert any("'aIice' and 'alice' are the same person" in p for p in policy.problems), policy.problems
