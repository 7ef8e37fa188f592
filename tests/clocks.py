"""Clocks a test moves instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ShiftedClock:
    """The wall clock's now in UTC, shifted by what the test moved it: a deadline is passed by
    ``advance(minutes=31)``, never by sleeping. It keeps running with the wall clock, so what it
    stamps stays in order with what the rest of the process stamps."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift

    def advance(self, **delta: float) -> None:
        self.shift += timedelta(**delta)
