"""OpenEVSE over MQTT: the charger and flexd meet on a broker. Options and builder."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.fields import within
from devices.openevse.adapter import MIN_A, OpenEvseAdapter
from devices.options import ChargerOptions, Endpoint, Resources

DEFAULT_PORT = 0  # unused: the charger is reached through a broker (see ``broker``)


@dataclass(frozen=True, slots=True)
class OpenEvseOptions(ChargerOptions):
    broker_host: str | None = None  # default: the [mqtt] broker
    broker_port: int | None = field(default=None, metadata=within(1, 65535))
    charger_id: str | None = None  # default: the device id
    max_current_a: int = field(default=32, metadata=within(MIN_A, 80))


def broker(opts: OpenEvseOptions, res: Resources) -> tuple[str, int]:
    """The broker the charger and flexd meet on: the device's own, else the daemon's [mqtt]."""
    host, port = res.mqtt_broker
    return opts.broker_host or host, opts.broker_port or port


async def build(opts: OpenEvseOptions, ep: Endpoint, res: Resources) -> OpenEvseAdapter:
    host, port = broker(opts, res)
    adapter = OpenEvseAdapter(
        host, port, opts.charger_id or ep.device_id, res.clock,
        max_current_a=opts.max_current_a, timeout_s=ep.timeout_s,
    )  # fmt: skip
    res.on_close(adapter.close)
    await adapter.start()
    return adapter
