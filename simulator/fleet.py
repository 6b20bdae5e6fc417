"""Many sites' devices in one process: ``python -m simulator fleet --sites N``.

Each site has a GivEnergy hybrid (its own Modbus TCP port on loopback) over its own world
(battery, PV, house load) and an OpenEVSE charger on the MQTT broker with its car, which plugs in
at ``--plug-in`` local time. The devices run apart from any daemon, so when a fleet instance dies
and another takes over, the new owner meets the same batteries and cars, as it would real kit.

``--out sites.toml`` writes the ``[[sites]]`` tables that point at these devices, ready for
``flexd sites import``. ``--start``/``--speed``/``--anchor-unix`` put the devices on the same
simulated timeline as the daemons (their ``[simulation]``), or on real time without them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.clock import Clock, ScaledClock, SystemClock
from core.timegrid import next_local
from simulator.ev import EV, PlugEvent
from simulator.givenergy import GivEnergySimulator
from simulator.openevse import OpenEvseSimulator
from simulator.world import SiteWorld, default_load_w


@dataclass
class FleetSite:
    id: str
    world: SiteWorld
    inverter: GivEnergySimulator
    inverter_port: int
    charger: OpenEvseSimulator
    ev: EV


def site_ids(n: int) -> list[str]:
    return [f"site-{i:05d}" for i in range(1, n + 1)]


async def start_fleet(
    n: int, clock: Clock, broker: tuple[str, int], *, plug_in: str | None, soc_pct: float,
    status_s: float,
) -> tuple[list[FleetSite], list[asyncio.Task[None]]]:  # fmt: skip
    sites: list[FleetSite] = []
    tasks: list[asyncio.Task[None]] = []
    for sid in site_ids(n):
        house = default_load_w()
        world = SiteWorld(clock)
        events = [] if plug_in is None else [PlugEvent(next_local(clock.now(), plug_in), True)]
        ev = EV(clock, capacity_kwh=60.0, soc_kwh=60.0 * soc_pct / 100, max_ac_w=7400.0,
                plugged_in=plug_in is None, events=events)  # fmt: skip
        world.load = lambda t, h=house, e=ev: h(t) + e.draw_w()  # type: ignore[misc]
        inverter = GivEnergySimulator(world)
        port = await inverter.start(0)
        charger = OpenEvseSimulator(broker[0], broker[1], f"{sid}-evse", ev, clock,
                                    interval_s=status_s)  # fmt: skip
        tasks.append(asyncio.get_running_loop().create_task(charger.run(), name=f"evse:{sid}"))
        sites.append(FleetSite(sid, world, inverter, port, charger, ev))
    return sites, tasks


def sites_toml(sites: list[FleetSite], broker: tuple[str, int], tariff: str) -> str:
    """The ``[[sites]]`` tables for ``flexd sites import``."""
    out: list[str] = []
    for i, s in enumerate(sites, start=1):
        out += [
            "[[sites]]", f'id = "{s.id}"', f'account = "acct-{i:05d}"',
            f'meter = "19{i:011d}"', f'tariff = "{tariff}"', "reserve_pct = 10", "",
            "[[sites.devices]]", f'id = "{s.id}-battery"', 'brand = "givenergy"',
            'host = "127.0.0.1"', f"port = {s.inverter_port}", "poll_seconds = 60",
            "frame_gap_s = 0", "",
            "[[sites.devices]]", f'id = "{s.id}-evse"', 'brand = "openevse"',
            f'charger_id = "{s.id}-evse"', f'broker_host = "{broker[0]}"',
            f"broker_port = {broker[1]}", "poll_seconds = 60", "",
            "[sites.devices.ev]", "capacity_kwh = 60", "max_charge_kw = 7.4",
            "initial_soc_pct = 30", "",
            "[sites.devices.preferences]", 'weekday_ready_by = "07:00"',
            'weekend_ready_by = "07:00"', "target_soc_pct = 80", "",
        ]  # fmt: skip
    return "\n".join(out)


async def run_cli(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulator fleet")
    ap.add_argument("--sites", type=int, required=True, help="how many sites")
    ap.add_argument("--broker", default="127.0.0.1:1883", help="MQTT broker host:port")
    ap.add_argument("--out", type=Path, help="write sites.toml (for flexd sites import) here")
    ap.add_argument("--tariff", default="io-go")
    ap.add_argument("--plug-in", default=None, help='local HH:MM the cars plug in (default: '
                    'plugged in from the start)')  # fmt: skip
    ap.add_argument("--soc", type=float, default=30.0, help="the cars' starting SoC in %%")
    ap.add_argument("--status-s", type=float, default=30.0, help="charger status interval")
    ap.add_argument("--start", help="simulated start (ISO-8601 with offset)")
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--anchor-unix", type=float, help="real time at which it is --start")
    args = ap.parse_args(argv)
    if not 1 <= args.sites <= 100_000:
        ap.error("--sites: must be within 1..100000")
    host, _, port_s = args.broker.rpartition(":")
    if not host or not port_s.isdigit():
        ap.error(f"--broker: expected host:port, got {args.broker!r}")
    clock: Clock = SystemClock()
    if args.start:
        start = datetime.fromisoformat(args.start)
        if start.tzinfo is None:
            ap.error("--start: must carry an offset (Z or +01:00)")
        clock = ScaledClock(start, args.speed, args.anchor_unix)
    broker = (host, int(port_s))
    sites, tasks = await start_fleet(args.sites, clock, broker, plug_in=args.plug_in,
                                     soc_pct=args.soc, status_s=args.status_s)  # fmt: skip
    if args.out is not None:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(sites_toml(sites, broker, args.tariff))
        tmp.replace(args.out)  # whole or absent: a reader never sees half a file
    print(f"fleet simulator: {len(sites)} sites on 127.0.0.1, broker {host}:{port_s} "
          f"(started {datetime.now(UTC):%H:%M:%S}Z)", flush=True)  # fmt: skip
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        for s in sites:
            s.charger.stop()
            await s.inverter.stop()
        await asyncio.wait(tasks, timeout=3)
