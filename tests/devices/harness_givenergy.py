from core.clock import ManualClock
from devices.givenergy.adapter import GivEnergyAdapter
from simulator.faults import Faults
from simulator.givenergy import GivEnergySimulator
from simulator.world import SiteWorld
from tests.devices.harness import Pair, assemble


async def make_pair(clock: ManualClock) -> Pair:
    world, faults = SiteWorld(clock), Faults()
    return await assemble(
        "givenergy", clock, world, faults, GivEnergySimulator(world, faults),
        lambda port: GivEnergyAdapter("127.0.0.1", port, clock, timeout_s=0.5, frame_gap_s=0),
        {"refuse_connections", "hang", "malformed", "ignore_commands"},
    )  # fmt: skip
