"""A browser context a test leaves open is closed when the test ends (tests/conftest.py), so no page
keeps polling a console for the rest of the worker's life; a module fixture's context stays."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-contexts")]


@pytest.fixture(scope="module")
def module_context(chromium):
    context = chromium.new_context()
    yield context
    context.close()


def test_a_test_leaves_a_context_open(chromium, module_context):
    chromium.new_context().new_page()
    chromium.new_page()
    assert len(chromium.contexts) == 3


def test_the_next_test_finds_only_the_module_fixtures_context(chromium, module_context):
    assert chromium.contexts == [module_context]
