"""Settings (admin): the effective configuration with secrets masked, and Kestra flow sync."""

from __future__ import annotations

import streamlit as st

import app_support as ui
from console.presentation import tables

ui.require_app_shell()

services = ui.get_services()
settings = services.settings
identity = ui.current_identity()
st.title(":material/settings: Settings")

if identity is None or not identity.is_admin:
    st.error("This page needs the admin role.", icon=":material/block:")
    st.stop()

st.subheader("Effective settings")
st.caption(
    "Environment variables win over `.streamlit/secrets.toml`. Secrets show only whether they are set."
)
st.dataframe(
    tables.key_value_frame(settings.safe_dict()), hide_index=True, width="stretch", key="settings_table"
)

st.subheader("Engine")
ok, name, message = ui.backend_health(services.backend, settings.backend_name)
st.markdown(f"**{name}** · {'healthy' if ok else 'unreachable'}")
if message:
    st.text(message)


def sync_flows() -> None:
    try:
        result = services.backend.sync_flows()
    except Exception as exc:
        ui.log.exception("flow sync failed")
        st.session_state["sync_result"] = ("error", f"Sync failed: {ui._one_line(exc)}")
        return
    count = len(result) if isinstance(result, list | tuple | dict) else result
    st.session_state["sync_result"] = ("success", f"Flows synced ({count}).")


if settings.backend_name == "kestra" and services.backend is not None:
    st.button("Sync flows to Kestra", on_click=sync_flows, key="sync_flows", icon=":material/sync:")
    outcome = st.session_state.pop("sync_result", None)
    if outcome:
        (st.success if outcome[0] == "success" else st.error)(outcome[1])
else:
    st.caption("Flow sync is available when the console runs against Kestra (KESTRA_URL set).")
