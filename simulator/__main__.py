"""Run one simulator by hand: ``python -m simulator NAME [options]``.

Each simulator module exposes ``async def run_cli(argv: list[str]) -> None`` that parses its own
options (``--port N`` at least), binds 127.0.0.1, prints the port it listens on, and serves until
interrupted. The registry is explicit: add a line here when a simulator lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys

SIMULATORS: dict[str, str] = {
    "givenergy": "simulator.givenergy",
    "solaredge": "simulator.solaredge",
    "enphase": "simulator.enphase",
    "powerwall": "simulator.powerwall",
    "ocpp-charger": "simulator.ocpp_charger",
    "openevse": "simulator.openevse",
    "vehicle-api": "simulator.vehicle_api",
    "octopus-api": "simulator.octopus_api",
    "fleet": "simulator.fleet",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in SIMULATORS:
        names = ", ".join(SIMULATORS)
        print(
            f"usage: python -m simulator NAME [options]; NAME is one of: {names}", file=sys.stderr
        )
        return 2
    module = importlib.import_module(SIMULATORS[argv[0]])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(module.run_cli(argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
