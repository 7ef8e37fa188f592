"""The console's HTTP API (JSON under ``/api/``), served by ``server.py`` on the same port as the
pages and sharing their parts (:func:`console.runtime.shared_services`). Starlette only: nothing here
imports Streamlit.

- ``GET /api/health`` (no token): store, engine, Kestra, Prometheus, LLM; 200 or 503.
- ``GET /api/approvals?status=pending&limit=50``: approvals with their votes.
- ``POST /api/approvals/{id}/decision`` ``{"decision": "approve" | "reject", "comment", "actor"}``.
- ``GET /api/executions/{id}``: state, decision, plan, approval, deployment, outcome.

Tokens: :mod:`console.access.tokens`; limits and errors: :mod:`console.api.guard`,
:mod:`console.api.http`.
"""

from console.api.app import PREFIX, Api, api_routes, create_api

__all__ = ["PREFIX", "Api", "api_routes", "create_api"]
