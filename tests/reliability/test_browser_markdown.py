"""In the browser: text from a URL parameter never becomes Markdown. Deep links carrying a
phishing link and an image (the attack on issue 12) show neither; bare ``www.``, ``http://`` and
e-mail autolinks, colour directives, shortcodes, math and HTML show as the characters typed.

Streamlit's remark-gfm finds autolinks in the already-parsed text, where backslash escapes are
gone; this is the test that the word joiners of ``md_escape`` defeat it in a real Chromium.

Three page loads: the deployments deep link with the attack as reported, then with the other
tricky inputs in one parameter (space-separated, so each meets the parser as it would alone:
``md_escape`` escapes character by character and every input starts and ends next to a space, as
it does inside "Deployment ... not found."), then the executions deep link with the attack."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from console.engines.embedded.runner import EmbeddedEngine
from console.presentation.formatting import WORD_JOINER
from console.settings import Settings
from tests.browser_support import CHROMIUM, open_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

ATTACK = "[Re-login](http://127.0.0.1:9/phish) ![t](http://127.0.0.1:9/t.png)"
TRICKY = [
    ATTACK,
    "see www.example.com/phish or WWW.example.org now",
    "bare http://127.0.0.1:9/bare and HTTPS://127.0.0.1:9/caps, (http://127.0.0.1:9/paren)",
    "mail alice@example.com or mailto:bob@example.com",
    "<http://127.0.0.1:9/angle> <img src=http://127.0.0.1:9/i.png> <b>bold</b>",
    ":red[alarm] :material/lock: :smile: $x^2$ **strong** _em_ `code` &amp; &#64;",
    "# heading | a | b |",
]
# the deep links opened on the deployments page: the attack alone, then the rest at once
DEPLOYMENT_LINKS = [ATTACK, " ".join(TRICKY[1:])]
FORMATTING = "a, img, strong, em, code, h1, h2, h3, li, table, span[class*='katex']"


def visible(text: str) -> str:
    return " ".join(text.replace(WORD_JOINER, "").split())


def assert_nothing_from_port_9(page, requested: list[str]) -> None:
    assert page.locator("a[href*='127.0.0.1:9/']").count() == 0
    assert page.locator("img[src*='127.0.0.1:9/']").count() == 0
    assert not [u for u in requested if "127.0.0.1:9/" in u], requested


def test_deep_links_show_untrusted_text_literally(start_console, chromium):
    console = start_console()
    # the deployments page lists something, so the deep link reaches its "not found" line
    engine = EmbeddedEngine(Settings(data_dir=console.data_dir), recover=False, synchronous=True)
    try:
        engine.run_sync(scenario="healthy-hotfix", triggered_by="seed", timeout=60)
    finally:
        engine.close()

    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    for text in DEPLOYMENT_LINKS:
        open_page(page, f"{console.url}/deployments?deployment={quote(text)}")
        main = page.get_by_test_id("stMain")
        alert = main.get_by_test_id("stAlert").filter(has_text="not found")
        alert.wait_for(timeout=15_000)
        assert visible(alert.inner_text()) == visible(f"Deployment {text} not found."), text
        assert alert.locator(FORMATTING).count() == 0, (text, alert.inner_html())
        assert_nothing_from_port_9(page, requested)

    # the execution deep link: the safe() error line repeats the id twice (what, and the message)
    open_page(page, f"{console.url}/executions?execution={quote(ATTACK)}")
    alert = page.get_by_test_id("stMain").get_by_test_id("stAlert").filter(has_text="not found")
    alert.wait_for(timeout=15_000)
    shown = visible(alert.inner_text()).removeprefix("block ")  # the alert's icon, a ligature
    assert shown == visible(f"execution {ATTACK}: execution {ATTACK} not found")
    assert alert.locator(FORMATTING).count() == 0, alert.inner_html()
    assert_nothing_from_port_9(page, requested)
    assert page.locator("[data-testid='stException']").count() == 0
    context.close()
