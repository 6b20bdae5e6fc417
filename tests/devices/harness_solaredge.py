from devices.solaredge import SolarEdgeAdapter
from flexd.clock import ManualClock
from simulator.faults import Faults
from simulator.solaredge import SolarEdgeSimulator
from simulator.world import SiteWorld
from tests.devices.harness import Pair


async def make_pair(clock: ManualClock) -> Pair:
    world = SiteWorld(clock)
    faults = Faults()
    sim = SolarEdgeSimulator(world, faults)
    port = await sim.start()
    adapter = SolarEdgeAdapter("127.0.0.1", port, clock, timeout_s=0.5)

    async def close() -> None:
        await adapter.close()
        await sim.stop()

    return Pair("solaredge", adapter, world, faults, clock, close,
                frozenset({"refuse_connections", "hang", "malformed", "ignore_commands", "single_client"}))  # fmt: skip
