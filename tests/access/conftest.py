"""Fixtures and helpers shared by the tests in tests/access/."""

from __future__ import annotations

import pytest

from console.access.auth import Identity, Role


@pytest.fixture
def viewer() -> Identity:
    return Identity("victor", Role.VIEWER)
