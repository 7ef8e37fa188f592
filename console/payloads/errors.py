"""What the payload parsers raise: one line naming the field at fault."""

from __future__ import annotations


class PayloadError(ValueError):
    """A payload that does not have the expected shape. ``field`` is the path of the first field at
    fault (``alerts[2].startsAt``); the message starts with it and never echoes a long value."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class AlertMappingError(ValueError):
    """A mapping setting that cannot be used (the message names the setting)."""
