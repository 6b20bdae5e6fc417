"""The daemon: wiring, one TaskGroup, clean shutdown.

Tasks: one poller per device, the price feed, one control loop per site, the API and the MQTT
bus. SIGTERM/SIGINT (or ``stop``) end the loops between cycles, so a command in flight finishes;
then every device is put in a safe mode and the database is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

import rating
from core.clock import Clock
from core.timegrid import half_hour_start
from flexd.config import Config, ConfigError, SiteConfig
from flexd.config.parse import parse_site
from flexd.control.dispatches import DispatchBook
from flexd.control.ev_soc import resolve_ev_soc
from flexd.control.events import EventBus
from flexd.control.plan import Plan
from flexd.control.planner import Planner
from flexd.control.poller import run_poller, run_vehicle_poller
from flexd.control.preferences import InputError, parse_preferences
from flexd.control.runtime import DeviceRuntime, Health, SiteRuntime, build_sites
from flexd.control.site_loop import LoopParts, SiteLoop
from flexd.control.solve_procs import SolverProcesses
from flexd.control.solve_queue import SolveQueue
from flexd.energy.rater import Rater
from flexd.fleet.journal import CommandJournal
from flexd.fleet.leases import Claim, Leases
from flexd.fleet.member import FleetMember
from flexd.fleet.relay import Relay
from flexd.fleet.service import FleetService
from flexd.obs.metrics import Metrics
from flexd.prices.feed import PriceFeed, PriceFeedError
from flexd.service import Service
from flexd.storage import Storage
from flexd.storage.fence import FENCE, Fence, StaleEpoch, fenced
from flexd.wiring import Backends

log = structlog.get_logger("flexd.daemon")


async def _first(*aws: Awaitable[Any]) -> None:
    """Wait until the first of several awaitables finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class SiteTasks:
    """A running site's tasks: its control loop, and its pollers."""

    loop: asyncio.Task[None]
    background: list[asyncio.Task[Any]]

    def all(self) -> list[asyncio.Task[Any]]:
        return [self.loop, *self.background]


@dataclass
class Daemon:
    config: Config
    clock: Clock
    storage: Storage
    backends: Backends
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    until: datetime | None = None  # simulated runs end here
    metrics: Metrics = field(default_factory=Metrics)
    # Solver processes started by the caller before the clock ([daemon] planner_processes);
    # None with planner_processes > 0: made here, started on the first solve.
    solver_processes: SolverProcesses | None = None

    def __post_init__(self) -> None:
        self.sites: dict[str, SiteRuntime] = build_sites(self.config.sites)
        self.tariffs = {s.meter: rating.load_tariff(s.tariff) for s in self.config.sites}
        self.site_of_meter = {s.meter: s.id for s in self.config.sites}
        # The one price book: the feed fills it, the planners and the rater read it.
        self.prices = rating.PriceBook()
        self.events = EventBus()
        self.rater = Rater(
            self.storage, self.clock, self.metrics, self.tariffs, prices=self.prices,
            events=self.events, site_of_meter=self.site_of_meter,
        )  # fmt: skip
        # A fleet instance (flexd.fleet): sites come from the database as leases are won.
        self.member: FleetMember | None = None
        self.instance = ""
        journal = None
        if self.config.fleet.enabled:
            fleet = self.config.fleet
            self.instance = fleet.instance_id or f"{socket.gethostname()}-{os.getpid()}"
            leases = Leases(self.storage, self.instance, fleet.lease_seconds)
            self.member = FleetMember(fleet, leases, self, self.metrics)
            journal = CommandJournal(self.storage, self.member.lease_left)
            self.rater.fence_of = self._fence_of_meter
        self.parts = LoopParts(
            self.clock, self.storage, self.metrics, self.events,
            DispatchBook(self.storage, self.clock, self.events), self.rater, journal,
        )  # fmt: skip
        # The API facade, for the API and MQTT only: the loops below never call it.
        service_type = FleetService if self.member is not None else Service
        self.service = service_type(
            self.config, self.storage, self.clock, self.sites, self.metrics,
            events=self.events, dispatch_book=self.parts.dispatches, rater=self.rater,
        )  # fmt: skip
        # Solves run off the event loop, one per core at most (HiGHS releases the GIL): more
        # threads only contend. Fewer keep the pollers fresher in a re-plan storm but make the
        # storm last longer (bench/daemon.py, BENCHMARKS.md).
        threads = self.config.planner_threads or (os.cpu_count() or 2)
        self.solver_pool = ThreadPoolExecutor(threads, thread_name_prefix="plan")
        # Or in processes ([daemon] planner_processes, flexd.control.solve_procs): a storm's
        # solves then never hold the event loop's GIL.
        if self.solver_processes is None and self.config.planner_processes > 0:
            self.solver_processes = SolverProcesses(self.config.planner_processes)
        slots = threads if self.solver_processes is None else self.solver_processes.processes
        # Shared by every site: in a storm, re-plans that change what devices do now go first.
        self.solves = SolveQueue(self.solver_pool, slots, self.solver_processes)
        self.loops: dict[str, SiteLoop] = (
            {} if self.member is not None
            else {sid: self._new_loop(site) for sid, site in self.sites.items()}
        )  # fmt: skip
        self.running: dict[str, SiteTasks] = {}
        self.running_epoch: dict[str, int] = {}
        self.site_locks: dict[str, asyncio.Lock] = {}
        self.site_closers: dict[str, Callable[[], Awaitable[None]]] = {}
        self.catalogue_mark: tuple[int, int] | None = None
        self.site_versions: dict[str, int] = {}
        self._tg: asyncio.TaskGroup | None = None
        self.api_port: int | None = None
        self.metrics.collectors.append(self._collect)

    def _new_loop(self, site: SiteRuntime) -> SiteLoop:
        planner = Planner(self.prices, self.tariffs[site.config.meter])
        return SiteLoop(site, self.parts, planner, self.solves)

    def _collect(self) -> None:
        now = self.clock.now()
        for site in self.sites.values():
            for dev in site.devices.values():
                if dev.adapter is None and self.member is not None:
                    continue  # a fleet site another instance controls
                age = dev.age_s(now)
                self.metrics.device_poll_age.set(-1 if age is None else age, device=dev.id)
        if self.member is not None:
            epochs, left = self.metrics.fleet_site_epoch, self.metrics.fleet_site_lease_seconds
            epochs.clear()
            left.clear()
            mono = time.monotonic()
            for sid, epoch in list(self.member.owned.items()):
                epochs.set(epoch, site=sid)
                left.set(round(self.member.valid_until.get(sid, mono) - mono, 1), site=sid)

    # --- start-up ---------------------------------------------------------------------------

    async def _restore(self) -> None:
        for sid in self.sites:
            await self._restore_site(sid)

    async def _restore_site(self, sid: str) -> None:
        """Resume from the database: preferences, last plan's view, open half-hour energy
        (after a restart, or a fleet instance's takeover)."""
        site = self.sites[sid]
        for dev in site.devices.values():
            doc = await self.storage.get_preferences(dev.id)
            if doc is not None:
                try:
                    dev.preferences = parse_preferences(doc)
                except InputError as exc:
                    log.warning("stored_preferences_invalid", device=dev.id, error=str(exc))
        saved = await self.storage.get_kv(f"meter:{sid}")
        if saved:
            self.loops[sid].state.meter.load(saved)
        latest = await self.storage.latest_plan(sid)
        if latest is not None:
            try:
                site.plan = Plan.from_json(latest[2])
            except (KeyError, TypeError, ValueError) as exc:  # an older shape: re-plan soon
                log.warning("stored_plan_unreadable", site=sid, error=str(exc))

    # --- a fleet's sites (flexd.fleet.member.SiteHost) --------------------------------------

    def _install_site(self, cfg: SiteConfig) -> None:
        """A fresh runtime for a site (in the dict the API shares): a later claim restores it
        from the database, never from what this instance last held in memory."""
        self.tariffs[cfg.meter] = rating.load_tariff(cfg.tariff)
        self.site_of_meter[cfg.meter] = cfg.id
        self.sites[cfg.id] = build_sites((cfg,))[cfg.id]

    def _fence_of_meter(self, meter: str) -> Fence | None:
        if not isinstance(self.service, FleetService):
            return None
        return self.service.local.get(self.site_of_meter.get(meter, ""))

    async def refresh_catalogue(self) -> None:
        """Read the fleet's sites when any was added or changed (every instance routes API
        requests for all of them); an owned site whose config changed restarts on it."""
        rows = await self.storage.query("SELECT version, sites FROM fleet_catalogue WHERE id = 1")
        mark = (int(rows[0][0]), int(rows[0][1]))
        if mark == self.catalogue_mark:
            return
        changed: list[SiteConfig] = []
        for sid, text, version in await self.storage.query(
            "SELECT id, doc, version FROM fleet_sites ORDER BY id"
        ):
            if self.site_versions.get(sid) == int(version):
                continue
            try:
                cfg = parse_site(json.loads(text), f"site {sid}: ", os.environ)
            except ConfigError as exc:
                log.error("site_config_invalid", site=sid, error=str(exc))
                continue
            self.site_versions[sid] = int(version)
            if sid in self.running:
                changed.append(cfg)
            else:
                self._install_site(cfg)
        self.catalogue_mark = mark
        assert self.member is not None
        for cfg in changed:  # given back, then claimed again (here or elsewhere) as it is now
            await self.member.give_back([cfg.id], "config changed")
            self._install_site(cfg)

    def _lock(self, sid: str) -> asyncio.Lock:
        return self.site_locks.setdefault(sid, asyncio.Lock())

    async def start_site(self, claim: Claim) -> bool:
        """Run a site this instance has just claimed (one start or stop of a site at a time)."""
        async with self._lock(claim.site):
            if claim.site in self.running:  # an earlier run still winding down: end it first
                await self._stop_site(claim.site, "claimed again")
            return await self._start_site(claim)

    async def _start_site(self, claim: Claim) -> bool:
        try:
            cfg = parse_site(claim.doc, f"site {claim.site}: ", os.environ)
        except ConfigError as exc:
            log.error("site_config_invalid", site=claim.site, error=str(exc))
            return False
        self._install_site(cfg)
        site = self.sites[cfg.id]
        self.loops[cfg.id] = self._new_loop(site)
        try:
            self.site_closers[cfg.id] = await self.backends.start_site(site)
            await self._restore_site(cfg.id)
        except Exception as exc:  # a device that cannot be set up: another instance may
            log.error("site_start_failed", site=cfg.id, error=f"{type(exc).__name__}: {exc}")
            await self._stop_site(cfg.id, "start failed")
            return False
        fence = Fence(cfg.id, self.instance, claim.epoch)
        assert self._tg is not None and isinstance(self.service, FleetService)
        self._spawn_site(self._tg, cfg.id, fence)
        self.running_epoch[cfg.id] = claim.epoch
        self.service.local[cfg.id] = fence
        log.info("site_claimed", site=cfg.id, epoch=claim.epoch)
        return True

    async def stop_site(self, sid: str, why: str, epoch: int | None = None) -> None:
        """Stop a site's run; with ``epoch``, only the run under that epoch (a later claim's
        run is left alone)."""
        async with self._lock(sid):
            if epoch is not None and self.running_epoch.get(sid) != epoch:
                return
            await self._stop_site(sid, why)

    async def _stop_site(self, sid: str, why: str) -> None:
        if isinstance(self.service, FleetService):
            self.service.local.pop(sid, None)
        epoch = self.running_epoch.pop(sid, None)
        tasks = self.running.pop(sid, None)
        if tasks is not None:
            for t in tasks.all():
                t.cancel()
            await asyncio.wait(tasks.all(), timeout=10)
        if self.parts.journal is not None and epoch is not None:
            # Before any hand-over: a command cancelled mid-flight ends here, not later.
            await self.parts.journal.close_open(sid, epoch)
        closer = self.site_closers.pop(sid, None)
        if closer is not None:
            await closer()
        self.loops.pop(sid, None)
        if sid in self.sites:
            self._install_site(self.sites[sid].config)
        log.info("site_released", site=sid, why=why)

    # --- tasks ------------------------------------------------------------------------------

    def _spawn_site(self, tg: asyncio.TaskGroup, sid: str, fence: Fence | None) -> None:
        """The site's pollers and control loop; in a fleet, every write they make carries the
        site's fence (the tasks copy the context they are created in)."""
        site, loop = self.sites[sid], self.loops[sid]
        background: list[asyncio.Task[Any]] = []
        with fenced(fence):
            for dev in site.devices.values():
                poller = run_poller(dev, self.clock, self.metrics, loop.on_state, self.stop)
                background.append(tg.create_task(poller, name=f"poll:{dev.id}"))
                if dev.vehicle is not None:
                    car = run_vehicle_poller(dev, self.clock, self._vehicle_soc, self.stop)
                    background.append(tg.create_task(car, name=f"vehicle:{dev.id}"))
            main = tg.create_task(self._site(loop), name=f"site:{sid}")
        self.running[sid] = SiteTasks(main, background)

    async def _price_feed(self) -> None:
        cfg = self.config.prices
        feed = PriceFeed(cfg, self.clock, self.prices, self.backends.price_url)
        fallback_said = False
        while not self.stop.is_set():
            got = 0
            try:
                got = await feed.fetch()
            except PriceFeedError as exc:
                log.warning("prices_unavailable", error=str(exc))
            now = self.clock.now()
            until = self.prices.known_until(now)
            self.service.prices_known_until = until if until > now else None
            if got:
                log.info("prices_updated", new_slots=got, known_until=until.isoformat())
                for sid in self.running:
                    self.sites[sid].request_replan("prices")
                await self.rater.retry_waiting()  # Agile days that lacked prices
                fallback_said = False
            elif until < now + timedelta(hours=8) and not fallback_said:
                note = "planning on the tariff's fixed rates where prices are missing"
                log.warning("prices_late", known_until=until.isoformat(), note=note)
                fallback_said = True
            await self.clock.sleep(cfg.poll_minutes * 60)

    async def _site(self, loop: SiteLoop) -> None:
        site = loop.site
        sid = site.config.id
        if self.member is not None:
            # A takeover: rate again what the last owner may have stored but not rated (it
            # can die between the two), from the readings in the database.
            now = self.clock.now()
            try:
                await self.rater.rerate(site.config.meter, {now, now - timedelta(days=1)},
                                        "takeover")  # fmt: skip
            except StaleEpoch:
                self._lost(sid)
                return
        while not self.stop.is_set():
            try:
                await loop.cycle()
            except StaleEpoch as exc:  # another instance owns the site now: stop at once
                self.metrics.fleet_stale_writes.inc()
                log.warning("stale_epoch", site=sid, error=str(exc))
                self._lost(sid)
                return
            except Exception as exc:  # one bad cycle must not end the site's control
                self.metrics.cycle_failures.inc(site=sid)
                log.exception("cycle_failed", site=sid, error=str(exc))
            now = self.clock.now()
            to_boundary = (half_hour_start(now) + timedelta(minutes=30) - now).total_seconds()
            wait = min(self.config.cycle_seconds, to_boundary + 1.0)
            await _first(self.clock.sleep(wait), site.wake.wait(), self.stop.wait())

    def _lost(self, sid: str) -> None:
        """The run of the site under this task's fence is over: the member stops it from
        outside this task (which is the one ending here)."""
        fence = FENCE.get()
        if self.member is not None and fence is not None:
            self.member.lose(sid, fence.epoch, "stale epoch")

    async def _until(self) -> None:
        if self.until is None:
            return
        while self.clock.now() < self.until:
            await _first(
                self.clock.sleep((self.until - self.clock.now()).total_seconds()), self.stop.wait()
            )
            if self.stop.is_set():
                return
        self.stop.set()

    # --- run --------------------------------------------------------------------------------

    async def run(self, on_started: Callable[[Daemon], Awaitable[None]] | None = None) -> None:
        member = self.member
        if member is None:
            await self._restore()
        api_runner = None
        relay: Relay | None = None
        try:  # whatever fails from here on, the finally below closes what was opened
            if member is None:
                await self.backends.start(self.sites)
            else:
                await self.backends.start_shared()
                await self.refresh_catalogue()
                assert isinstance(self.service, FleetService)
                relay = Relay(str(self.config.database), self.config.database_password,
                              self.instance, self.service.handle)  # fmt: skip
                self.service.attach(self.instance, relay)
            if self.config.api.enabled:
                from flexd.api.app import start_api

                api_runner = await start_api(self.service, self.config.api)
                self.api_port = _runner_port(api_runner)
                log.info("api_listening", host=self.config.api.host, port=self.api_port)
            if on_started is not None:
                await on_started(self)
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                background: list[asyncio.Task[Any]] = []
                fleet_task = None
                if member is None:
                    for sid in self.sites:
                        self._spawn_site(tg, sid, None)
                else:
                    assert relay is not None
                    background.append(tg.create_task(relay.run(self.stop), name="relay"))
                    await asyncio.wait_for(relay.ready.wait(), 10)
                    fleet_task = tg.create_task(member.run(self.stop), name="fleet")
                    log.info("fleet_member", instance=self.instance,
                             lease_seconds=self.config.fleet.lease_seconds)  # fmt: skip
                background.append(tg.create_task(self._price_feed(), name="prices"))
                if self.config.mqtt.enabled and member is None:
                    from flexd.mqtt.bus import MqttBus

                    bus = MqttBus(self.service, self.config.mqtt, list(self.sites))
                    background.append(tg.create_task(bus.run(), name="mqtt"))
                elif self.config.mqtt.enabled:
                    log.warning("mqtt_bus_off", why="a fleet instance takes app requests "
                                "over the API (any instance); [mqtt] serves devices only")
                tg.create_task(self._until(), name="until")
                await self.stop.wait()
                if member is not None and fleet_task is not None:
                    await fleet_task
                    await member.shutdown()  # every site stopped, its lease given back
                # Loops end between cycles, so a command in flight finishes; a cycle stuck
                # longer than this is cancelled rather than holding the shutdown forever.
                loops = [t.loop for t in self.running.values()]
                background += [b for t in self.running.values() for b in t.background]
                if loops:
                    _, stuck = await asyncio.wait(loops, timeout=30)
                    for t in stuck:
                        t.cancel()
                for _ in range(3):  # re-cancel: a library may swallow one cancellation
                    for t in background:
                        t.cancel()
                    _, pending = await asyncio.wait(background, timeout=5)
                    if not pending:
                        break
        finally:
            if member is None:
                for loop in self.loops.values():
                    await loop.safe_mode()
            for sid in list(self.site_closers):
                await self.site_closers.pop(sid)()
            if api_runner is not None:
                await api_runner.cleanup()
            if relay is not None:
                await relay.close()
            await self.backends.close()
            self.solver_pool.shutdown(wait=False, cancel_futures=True)
            if self.solver_processes is not None:
                self.solver_processes.close()

    def _vehicle_soc(self, dev: DeviceRuntime) -> None:
        resolve_ev_soc(dev, self.clock.now())

    def install_signal_handlers(self) -> None:
        running = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                running.add_signal_handler(sig, self.stop.set)

    # --- reporting --------------------------------------------------------------------------

    def health_summary(self) -> dict[str, str]:
        now = self.clock.now()
        return {d.id: d.health(now).value for s in self.sites.values() for d in s.devices.values()}

    def offline(self) -> list[str]:
        now = self.clock.now()
        return [
            d.id
            for s in self.sites.values()
            for d in s.devices.values()
            if d.health(now) == Health.OFFLINE
        ]


def _runner_port(runner: Any) -> int | None:
    for address in getattr(runner, "addresses", []):
        return int(address[1])
    return None
