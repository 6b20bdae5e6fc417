from core.clock import ManualClock
from devices.solaredge.adapter import SolarEdgeAdapter
from simulator.faults import Faults
from simulator.solaredge import SolarEdgeSimulator
from simulator.world import SiteWorld
from tests.devices.harness import Pair, assemble


async def make_pair(clock: ManualClock) -> Pair:
    world, faults = SiteWorld(clock), Faults()
    return await assemble(
        "solaredge", clock, world, faults, SolarEdgeSimulator(world, faults),
        lambda port: SolarEdgeAdapter("127.0.0.1", port, clock, timeout_s=0.5),
        {"refuse_connections", "hang", "malformed", "ignore_commands", "single_client"},
    )  # fmt: skip
