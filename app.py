"""Operator console entry point: page config, identity, backend status, navigation.

Run with ``streamlit run app.py``. The pages live in ``pages/``; each one starts with
``require_app_shell()`` so that a deep link on a fresh server also runs through this script.
"""

from __future__ import annotations

import streamlit as st

from console.presentation.formatting import md_escape
from ui import refresh
from ui.identity import identity_sidebar, sign_in_banners
from ui.services import get_services, safe, sidebar_status
from ui.shell import degraded_banner

st.set_page_config(page_title="DevOps Loop Console", page_icon=":material/autorenew:", layout="wide")

services = get_services()
settings = services.settings

with st.sidebar:
    st.markdown("### :material/autorenew: DevOps Loop")
identity = identity_sidebar(settings)
sidebar_status(services)

refresh.hold(False)  # a page with a dialog open holds its refresh again (pages/approvals.py)
with st.sidebar:
    refresh.poll()  # the page's one poll of what it drew (ui/refresh.py)
pending = 0
if services.store is not None:  # the count in the menu: "Approvals (3)", current on every page
    store = services.store
    digest = safe(store.approvals.digest, default=(), what="pending approvals")
    refresh.drawn("approvals", digest)
    pending = sum(1 for _, state, _ in digest if state == "pending")
    refresh.watch("approvals", store.approvals.digest)
approvals_title = f"Approvals ({pending})" if pending else "Approvals"

pages = {
    "Operate": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/deployments.py", title="Deployments", icon=":material/rocket:"),
        st.Page("pages/approvals.py", title=approvals_title, icon=":material/gavel:"),
        st.Page("pages/executions.py", title="Executions", icon=":material/account_tree:"),
        st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:"),
    ],
    "Improve": [
        st.Page("pages/scenarios.py", title="Scenarios", icon=":material/science:"),
        st.Page("pages/learning.py", title="Learning", icon=":material/school:"),
    ],
}
if identity is not None and identity.is_admin:
    pages["Admin"] = [st.Page("pages/settings.py", title="Settings", icon=":material/settings:")]

sign_in_banners(settings)
if services.error:
    st.warning(md_escape(services.error), icon="⚠️")
degraded_banner(services)

st.navigation(pages).run()
