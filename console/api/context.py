"""What a handler gets: the console's parts and the calling token, each part checked on use."""

from __future__ import annotations

from dataclasses import dataclass

from console.access.approvals import ApprovalService
from console.access.tokens import ApiToken
from console.api.http import ApiError
from console.engines.backend import Backend
from console.inbound import Inbound
from console.runtime import Services
from console.settings import Settings
from console.storage import Store

UNAVAILABLE_RETRY_S = "5"


@dataclass(frozen=True)
class Context:
    services: Services
    token: ApiToken | None = None

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def _unavailable(self, part: str) -> ApiError:
        reason = self.services.error or f"the {part} did not start"
        return ApiError(503, f"{part} unavailable: {reason}", headers={"Retry-After": UNAVAILABLE_RETRY_S})

    def store(self) -> Store:
        if self.services.store is None:
            raise self._unavailable("store")
        return self.services.store

    def backend(self) -> Backend:
        if self.services.backend is None:
            raise self._unavailable("engine")
        return self.services.backend

    def approval_service(self) -> ApprovalService:
        if self.services.approvals is None:
            raise self._unavailable("approval service")
        return self.services.approvals

    def inbound(self) -> Inbound:
        if self.services.inbound is None:
            raise self._unavailable("inbound service")
        return self.services.inbound
