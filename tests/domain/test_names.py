"""People's names: one canonical form for the deciding name and the stored requester, so the
no-self-review and two-different-approvers rules cannot be dodged by spelling a name differently."""

from __future__ import annotations

import pytest

from console.access.auth import InvalidIdentity, validate_name
from console.domain.names import (
    MAX_NAME,
    InvalidName,
    canonical_name,
    is_system_name,
    name_key,
    requester_name,
    same_person,
)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("bob ", "bob"),
        ("  bob", "bob"),
        ("Jane   Doe", "Jane Doe"),
        ("bob\n", "bob"),  # trimmed like any other edge whitespace
        ("ｂｏｂ", "bob"),  # full-width letters: NFKC
        ("bob\u00a0", "bob"),  # no-break space
        ("Jane\u2003Doe", "Jane Doe"),  # em space inside: NFKC makes it a space
        ("José", "José"),
        ("e\u0301mile", "émile"),  # combining accent composed
        ("o'brien", "o'brien"),
        ("dana@example.com", "dana@example.com"),
    ],
)
def test_canonical_form(raw: str, canonical: str) -> None:
    assert canonical_name(raw) == canonical
    assert validate_name(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("b\u200bob", "invisible"),  # zero-width space: would look like "bob"
        ("bob\u202e", "invisible"),  # right-to-left override
        ("bo\x00b", "control"),
        ("bo\nb", "control"),
        ("bo\tb", "control"),
        ("a" * (MAX_NAME + 1), "at most"),
        ("system:timeout", "reserved"),
        ("SYSTEM:timeout", "reserved"),
        ("System : timeout", "reserved"),
        ("ｓｙｓｔｅｍ：timeout", "reserved"),  # full-width, NFKC folds it
        ("<script>", "letters, digits"),
        ("-bob", "starts with"),
        ("[bob](http://x)", "letters, digits"),
    ],
)
def test_refused_names_say_why_in_one_line(raw: str, why: str) -> None:
    with pytest.raises(InvalidName, match=why) as caught:
        canonical_name(raw)
    assert "\n" not in str(caught.value)
    with pytest.raises(InvalidIdentity, match=why):
        validate_name(raw)


def test_only_the_system_itself_may_use_a_system_name() -> None:
    assert canonical_name("system:timeout", allow_system=True) == "system:timeout"
    assert is_system_name(" System:x") and not is_system_name("sys tem")


def test_requester_is_stored_in_the_same_canonical_form_and_never_refused() -> None:
    assert requester_name("  bob  ") == "bob"
    assert requester_name("ｂｏｂ") == "bob"
    assert requester_name("b\u200bob") == "bob"  # invisible characters dropped, not kept
    assert requester_name("ci\nbot") == "ci bot"
    assert requester_name("x\x00y") == "x y"
    assert requester_name("") == "unknown" and requester_name(None) == "unknown"
    assert requester_name("github-actions[bot]") == "github-actions[bot]"
    assert len(requester_name("a" * 1000)) == 200


@pytest.mark.parametrize(("a", "b"), [("bob", "bob "), ("Bob", "bob"), ("ｂｏｂ", "BOB"), ("ÉMILE", "émile")])
def test_same_person_compares_canonical_names_case_insensitively(a: str, b: str) -> None:
    assert same_person(a, b) and name_key(a) == name_key(b)


def test_different_people_and_empty_names_are_never_the_same() -> None:
    assert not same_person("bob", "bobby")
    assert not same_person("", "")
