from core.clock import ManualClock
from devices.base import BatteryMode
from devices.powerwall.adapter import PowerwallAdapter
from simulator.faults import Faults
from simulator.powerwall import PowerwallSimulator, powerwall_world
from tests.devices.harness import Pair, assemble

NO_EXPORT = frozenset(BatteryMode) - {BatteryMode.FORCE_DISCHARGE}
HTTPS_FAULTS = {"refuse_connections", "hang", "malformed", "expire_token", "ignore_commands"}


async def make_pair(clock: ManualClock) -> Pair:
    world, faults = powerwall_world(clock), Faults()
    sim = PowerwallSimulator(world, faults)
    return await assemble(
        "powerwall", clock, world, faults, sim,
        lambda port: PowerwallAdapter(
            "127.0.0.1", port, clock, password=sim.password, fleet_token=sim.fleet_token,
            site_id=sim.site_id, ssl_context=sim.site.client_context(), timeout_s=0.5),
        HTTPS_FAULTS, modes=NO_EXPORT, power_settable=False,
    )  # fmt: skip
