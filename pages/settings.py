"""Settings (admin): the effective configuration with secrets masked and credentials in URLs hidden,
the sign-in that applies, the services file's sources, and Kestra flow sync."""

from __future__ import annotations

import streamlit as st

from console.access import signin
from console.presentation import tables
from console.presentation.formatting import md_escape
from console.telemetry.config import load_services
from ui.identity import current_identity
from ui.services import backend_health, get_services, log, one_line
from ui.shell import require_app_shell

require_app_shell()

services = get_services()
settings = services.settings
identity = current_identity()
st.title(":material/settings: Settings")

if identity is None or not identity.is_admin:
    st.error("This page needs the admin role.", icon=":material/block:")
    st.stop()

st.subheader("Effective settings")
st.caption(
    "Environment variables win over `.streamlit/secrets.toml`. Secrets show only whether they are set; "
    "credentials in URLs are hidden."
)
st.dataframe(
    tables.key_value_frame(settings.safe_dict()), hide_index=True, width="stretch", key="settings_table"
)

st.subheader("Sign-in")
policy = signin.sign_in(settings)
st.markdown(f"**{md_escape(policy.mode)}**" + (" · demo identity on" if policy.demo_on_live else ""))
for line in (*policy.problems, *policy.notes):
    st.text(line)
st.caption(
    "The console acts for real here: " + md_escape(", ".join(policy.live))
    if policy.live
    else "Nothing real is configured (no Kestra, live executor or HTTP API): demo identity is allowed."
)

if settings.services_file is not None:
    st.subheader("Services")
    try:
        configured = load_services(settings.services_file, settings).services
    except Exception as exc:
        st.error(md_escape(one_line(exc)), icon=":material/block:")
    else:
        st.dataframe(
            tables.services_frame(configured), hide_index=True, width="stretch", key="services_table"
        )

st.subheader("Engine")
ok, name, message = backend_health(services.backend, settings.backend_name)
st.markdown(f"**{md_escape(name)}** · {'healthy' if ok else 'unreachable'}")
if message:
    st.text(message)


def sync_flows() -> None:
    try:
        result = services.backend.sync_flows()
    except Exception as exc:
        log.exception("flow sync failed")
        st.session_state["sync_result"] = ("error", f"Sync failed: {one_line(exc)}")
        return
    count = len(result) if isinstance(result, list | tuple | dict) else result
    st.session_state["sync_result"] = ("success", f"Flows synced ({count}).")


if settings.backend_name == "kestra" and services.backend is not None:
    st.button("Sync flows to Kestra", on_click=sync_flows, key="sync_flows", icon=":material/sync:")
    outcome = st.session_state.pop("sync_result", None)
    if outcome:
        (st.success if outcome[0] == "success" else st.error)(md_escape(outcome[1]))
else:
    st.caption("Flow sync is available when the console runs against Kestra (KESTRA_URL set).")
