"""The fault tests share the UI tests' console on a private data directory (the pages' banner)."""

from tests.ui.conftest import app_env  # noqa: F401  (a fixture)
