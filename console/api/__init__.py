"""The console's HTTP API (JSON under ``/api/``), served by ``server.py`` on the same port as the
pages and sharing their parts (:func:`console.runtime.shared_services`). Starlette only: nothing here
imports Streamlit.

- ``GET /api/health`` (no token): store, engine, Kestra, Prometheus, LLM; 200 or 503.
- ``GET /api/approvals?status=pending&limit=50``: approvals with their votes.
- ``POST /api/approvals/{id}/decision`` ``{"decision": "approve" | "reject", "comment", "actor"}``.
- ``GET /api/executions/{id}``: state, decision, plan, approval, deployment, incident, outcome.
- ``POST /api/alerts``: an Alertmanager delivery (webhook v4); each firing alert an incident run.
- ``POST /api/deployments``: a deployment announcement (the console's, GitHub's, Argo CD's shape).

Tokens: :mod:`console.access.tokens`; limits and errors: :mod:`console.api.guard`,
:mod:`console.api.http`. Beside it, outside ``/api/``: ``/auth/session``
(:mod:`console.api.session`), where a browser's password sign-in becomes the session cookie.
"""

from console.api.app import PREFIX, Api, api_routes, create_api

__all__ = ["PREFIX", "Api", "api_routes", "create_api"]
