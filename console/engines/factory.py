"""The engine the settings ask for: Kestra when ``KESTRA_URL`` is set, else the embedded one."""

from __future__ import annotations

from console.engines.backend import Backend
from console.settings import Settings
from console.storage import Store


def make_backend(settings: Settings, store: Store | None = None, *, recover: bool = True) -> Backend:
    """Kestra when ``KESTRA_URL`` is set, else the embedded engine on ``store`` (the console's own,
    so the engine and the pages share one set of connections) which takes over what a dead process
    left running unless ``recover`` is False.

    Imports are lazy so that neither engine loads the other's dependencies.
    """
    if settings.kestra_url:
        from console.engines.kestra.backend import KestraBackend

        return KestraBackend(settings)
    from console.engines.embedded.runner import EmbeddedEngine

    return EmbeddedEngine(settings, store, recover=recover)
