from devices.givenergy import GivEnergyAdapter
from flexd.clock import ManualClock
from simulator.faults import Faults
from simulator.givenergy import GivEnergySimulator
from simulator.world import SiteWorld
from tests.devices.harness import Pair


async def make_pair(clock: ManualClock) -> Pair:
    world = SiteWorld(clock)
    faults = Faults()
    sim = GivEnergySimulator(world, faults)
    port = await sim.start()
    adapter = GivEnergyAdapter("127.0.0.1", port, clock, timeout_s=0.5)

    async def close() -> None:
        await adapter.close()
        await sim.stop()

    return Pair("givenergy", adapter, world, faults, clock, close,
                frozenset({"refuse_connections", "hang", "malformed", "ignore_commands"}))  # fmt: skip
