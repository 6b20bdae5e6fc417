"""Device wiring: each configured device's adapter, built from the brand registry
(:mod:`devices.registry`), plus the car's cloud API for chargers that have one.

Production wiring does not know that simulators exist: a :class:`DeviceHooks` (only
:mod:`flexd.simulation` makes one) may redirect an endpoint or adjust options before a build
and attach to the adapter after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import structlog

from core.clock import Clock
from devices.options import ChargerOptions, Endpoint
from devices.registry import BRANDS, build_vehicle
from flexd.config import Config, DeviceConfig, SiteConfig
from flexd.control.runtime import SiteRuntime

log = structlog.get_logger("flexd.wiring")
Closer = Callable[[], Awaitable[None]]


class DeviceHooks(Protocol):
    """What simulated mode may change in the wiring (see :mod:`flexd.simulation`)."""

    async def start(self, backends: Backends) -> None: ...

    async def before(
        self, b: Backends, site: SiteConfig, dev: DeviceConfig, ep: Endpoint, options: Any
    ) -> tuple[Endpoint, Any]: ...

    async def after(self, b: Backends, site: SiteConfig, dev: DeviceConfig, adapter: Any) -> None:
        ...

    async def vehicle(self, b: Backends, site: SiteConfig, dev: DeviceConfig) -> Any: ...


class Backends:
    """Builds every device's adapter and owns what must be closed at shutdown (the
    :class:`devices.options.Resources` the brand builders use)."""

    def __init__(self, config: Config, clock: Clock, hooks: DeviceHooks | None = None) -> None:
        self.config = config
        self.clock = clock
        self.hooks = hooks
        self.price_url: str | None = None  # a price feed served in-process, when there is one
        self.shared: dict[str, Any] = {}  # daemon-wide servers (e.g. the OCPP central system)
        self.vehicles: dict[str, Any] = {}  # charger device id -> its car's cloud API adapter
        self._closers: list[Closer] = []

    @property
    def mqtt_broker(self) -> tuple[str, int]:
        return self.config.mqtt.host, self.config.mqtt.port

    def on_close(self, closer: Closer) -> None:
        self._closers.append(closer)

    def endpoint(self, dev: DeviceConfig) -> Endpoint:
        brand = BRANDS[dev.brand]
        host, port = dev.host, dev.port or brand.default_port
        max_w = (dev.ev.max_charge_kw if dev.ev else 7.4) * 1000
        return Endpoint(dev.id, host, port, dev.timeout_s, dev.secrets, max_power_w=max_w)

    async def start(self, sites: dict[str, SiteRuntime]) -> None:
        await self.start_shared()
        for site in sites.values():
            await self._build_site(site)

    async def start_shared(self) -> None:
        """What every site shares (a simulated price feed): once, before any site."""
        if self.hooks is not None:
            await self.hooks.start(self)

    async def start_site(self, site: SiteRuntime) -> Closer:
        """Build one site's adapters now (a fleet instance that has just claimed it); returns
        what closes exactly them when the site is released. Servers shared by many devices
        (the OCPP central system) stay open until :meth:`close`. A build that fails closes
        what it opened before the error goes on. Sites may be built concurrently."""
        scope = _SiteScope(self)
        try:
            await self._build_site(site, cast(Backends, scope))
        except BaseException:
            await _close_all(scope.closers, site.config.id)
            raise

        async def close() -> None:
            await _close_all(scope.closers, site.config.id)

        return close

    async def _build_site(self, site: SiteRuntime, res: Backends | None = None) -> None:
        b = self if res is None else res  # what the builders register their closers with
        for dev in site.devices.values():
            cfg = dev.config
            ep, options = self.endpoint(cfg), cfg.options
            if self.hooks is not None:
                ep, options = await self.hooks.before(b, site.config, cfg, ep, options)
            dev.adapter = await BRANDS[cfg.brand].build(options, ep, b)
            if self.hooks is not None:
                await self.hooks.after(b, site.config, cfg, dev.adapter)
            if isinstance(options, ChargerOptions):
                dev.vehicle = await self._vehicle(b, site.config, cfg, options, ep)

    async def _vehicle(
        self, b: Backends, site: SiteConfig, dev: DeviceConfig, options: ChargerOptions,
        ep: Endpoint,
    ) -> Any:  # fmt: skip
        vehicle = None
        if self.hooks is not None:
            vehicle = await self.hooks.vehicle(b, site, dev)
        if vehicle is None:
            vehicle = build_vehicle(options, ep)
        if vehicle is not None:
            self.vehicles[dev.id] = vehicle
            b.on_close(vehicle.close)
        return vehicle

    async def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception as exc:  # one device's close must not keep the others open
                log.warning("close_failed", closer=getattr(closer, "__qualname__", "?"),
                            error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        self._closers.clear()


class _SiteScope:
    """The Backends as one site's builders see them: what they register to close is the
    site's, except the servers every site shares (kept in ``shared``), which stay the daemon's."""

    def __init__(self, backends: Backends) -> None:
        self._backends = backends
        self.closers: list[Closer] = []

    def on_close(self, closer: Closer) -> None:
        shared = {id(v) for v in self._backends.shared.values()}
        if id(getattr(closer, "__self__", None)) in shared:
            self._backends.on_close(closer)
        else:
            self.closers.append(closer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backends, name)


async def _close_all(closers: list[Closer], site: str) -> None:
    for closer in reversed(closers):
        try:
            await closer()
        except Exception as exc:  # one device's close must not keep the others open
            log.warning("close_failed", site=site, error=f"{type(exc).__name__}: {exc}")
