from devices.base import BatteryMode
from devices.enphase import EnphaseAdapter
from flexd.clock import ManualClock
from simulator.enphase import EnphaseSimulator, enphase_world
from simulator.faults import Faults
from tests.devices.harness import Pair


async def make_pair(clock: ManualClock) -> Pair:
    world = enphase_world(clock)
    faults = Faults()
    sim = EnphaseSimulator(world, faults)
    port = await sim.start()
    adapter = EnphaseAdapter("127.0.0.1", port, clock, token=sim.token,
                             ssl_context=sim.site.client_context(), timeout_s=0.5)  # fmt: skip

    async def close() -> None:
        await adapter.close()
        await sim.stop()

    modes = frozenset(BatteryMode) - {BatteryMode.FORCE_DISCHARGE}
    faults_ = frozenset({"refuse_connections", "hang", "malformed", "expire_token",
                         "ignore_commands"})  # fmt: skip
    return Pair("enphase", adapter, world, faults, clock, close, faults_, modes,
                power_settable=False)
