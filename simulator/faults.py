"""Fault switches every protocol front-end honours; tests flip them at run time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    refuse_connections: bool = False  # close every new connection at once
    hang: bool = False  # accept, then never answer
    malformed: bool = False  # answer with a payload the adapter cannot parse
    expire_token: bool = False  # token/credential-based brands: refuse the current token
    ignore_commands: bool = False  # acknowledge writes but do not change the world
    revert_after_s: float | None = None  # undo the last setting this many simulated s later
    single_client: bool = False  # refuse a second concurrent client (SolarEdge behaviour)

    def clear(self) -> None:
        self.refuse_connections = False
        self.hang = False
        self.malformed = False
        self.expire_token = False
        self.ignore_commands = False
        self.revert_after_s = None
        self.single_client = False
