from devices.base import BatteryMode
from devices.powerwall import PowerwallAdapter
from flexd.clock import ManualClock
from simulator.faults import Faults
from simulator.powerwall import PowerwallSimulator, powerwall_world
from tests.devices.harness import Pair


async def make_pair(clock: ManualClock) -> Pair:
    world = powerwall_world(clock)
    faults = Faults()
    sim = PowerwallSimulator(world, faults)
    port = await sim.start()
    adapter = PowerwallAdapter("127.0.0.1", port, clock, password=sim.password,
                               fleet_token=sim.fleet_token, site_id=sim.site_id,
                               ssl_context=sim.site.client_context(), timeout_s=0.5)  # fmt: skip

    async def close() -> None:
        await adapter.close()
        await sim.stop()

    modes = frozenset(BatteryMode) - {BatteryMode.FORCE_DISCHARGE}
    faults_ = frozenset({"refuse_connections", "hang", "malformed", "expire_token",
                         "ignore_commands"})  # fmt: skip
    return Pair("powerwall", adapter, world, faults, clock, close, faults_, modes,
                power_settable=False)
