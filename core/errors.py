"""The one error base for bad input: every refusal names the field and the reason.

Config errors, API and MQTT input errors, rating input errors and planner problem errors all
derive from :class:`FieldError`, so each edge (CLI exit 2, HTTP 4xx JSON, MQTT error topic)
translates them in one way.
"""

from __future__ import annotations


class FieldError(ValueError):
    """``field: reason``; ``field`` may be a key path such as ``sites[0].devices[1].port``."""

    def __init__(self, field: str | None, reason: str, message: str | None = None) -> None:
        self.field = field
        self.reason = reason
        super().__init__(message or (f"{field}: {reason}" if field else reason))
