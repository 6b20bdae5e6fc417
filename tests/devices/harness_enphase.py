from core.clock import ManualClock
from devices.enphase.adapter import EnphaseAdapter
from simulator.enphase import EnphaseSimulator, enphase_world
from simulator.faults import Faults
from tests.devices.harness import Pair, assemble
from tests.devices.harness_powerwall import HTTPS_FAULTS, NO_EXPORT


async def make_pair(clock: ManualClock) -> Pair:
    world, faults = enphase_world(clock), Faults()
    sim = EnphaseSimulator(world, faults)
    return await assemble(
        "enphase", clock, world, faults, sim,
        lambda port: EnphaseAdapter("127.0.0.1", port, clock, token=sim.token,
                                    ssl_context=sim.site.client_context(), timeout_s=0.5),
        HTTPS_FAULTS, modes=NO_EXPORT, power_settable=False,
    )  # fmt: skip
