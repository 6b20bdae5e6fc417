"""The daemon: wiring, one TaskGroup, clean shutdown.

Tasks: one poller per device, the price feed, one control loop per site, the API and the MQTT
bus. SIGTERM/SIGINT (or ``stop``) end the loops between cycles, so a command in flight finishes;
then every device is put in a safe mode and the database is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

import rating
from core.clock import Clock
from core.timegrid import half_hour_start
from flexd.config import Config
from flexd.control.dispatches import DispatchBook
from flexd.control.ev_soc import resolve_ev_soc
from flexd.control.events import EventBus
from flexd.control.plan import Plan
from flexd.control.planner import Planner
from flexd.control.poller import run_poller, run_vehicle_poller
from flexd.control.preferences import InputError, parse_preferences
from flexd.control.runtime import DeviceRuntime, Health, SiteRuntime, build_sites
from flexd.control.site_loop import LoopParts, SiteLoop
from flexd.control.solve_queue import SolveQueue
from flexd.energy.rater import Rater
from flexd.obs.metrics import Metrics
from flexd.prices.feed import PriceFeed, PriceFeedError
from flexd.service import Service
from flexd.storage import Storage
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
class Daemon:
    config: Config
    clock: Clock
    storage: Storage
    backends: Backends
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    until: datetime | None = None  # simulated runs end here
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        self.sites: dict[str, SiteRuntime] = build_sites(self.config.sites)
        self.tariffs = {s.meter: rating.load_tariff(s.tariff) for s in self.config.sites}
        # The one price book: the feed fills it, the planners and the rater read it.
        self.prices = rating.PriceBook()
        self.events = EventBus()
        self.rater = Rater(
            self.storage, self.clock, self.metrics, self.tariffs, prices=self.prices,
            events=self.events, site_of_meter={s.meter: s.id for s in self.config.sites},
        )  # fmt: skip
        parts = LoopParts(
            self.clock, self.storage, self.metrics, self.events,
            DispatchBook(self.storage, self.clock, self.events), self.rater,
        )  # fmt: skip
        # The API facade, for the API and MQTT only: the loops below never call it.
        self.service = Service(
            self.config, self.storage, self.clock, self.sites, self.metrics,
            events=self.events, dispatch_book=parts.dispatches, rater=self.rater,
        )  # fmt: skip
        # Solves run off the event loop, one per core at most (HiGHS releases the GIL): more
        # threads only contend. Fewer keep the pollers fresher in a re-plan storm but make the
        # storm last longer (bench/daemon.py, BENCHMARKS.md).
        threads = self.config.planner_threads or (os.cpu_count() or 2)
        self.solver_pool = ThreadPoolExecutor(threads, thread_name_prefix="plan")
        # Shared by every site: in a storm, re-plans that change what devices do now go first.
        self.solves = SolveQueue(self.solver_pool, threads)
        self.loops = {
            sid: SiteLoop(
                site,
                parts,
                Planner(self.prices, self.tariffs[site.config.meter]),
                self.solves,
            )
            for sid, site in self.sites.items()
        }
        self.api_port: int | None = None
        self.metrics.collectors.append(self._collect)

    def _collect(self) -> None:
        now = self.clock.now()
        for site in self.sites.values():
            for dev in site.devices.values():
                age = dev.age_s(now)
                self.metrics.device_poll_age.set(-1 if age is None else age, device=dev.id)

    # --- start-up ---------------------------------------------------------------------------

    async def _restore(self) -> None:
        """Resume from the database: preferences, last plan's view, open half-hour energy."""
        for sid, site in self.sites.items():
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

    # --- tasks ------------------------------------------------------------------------------

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
                for site in self.sites.values():
                    site.request_replan("prices")
                await self.rater.retry_waiting()  # Agile days that lacked prices
                fallback_said = False
            elif until < now + timedelta(hours=8) and not fallback_said:
                note = "planning on the tariff's fixed rates where prices are missing"
                log.warning("prices_late", known_until=until.isoformat(), note=note)
                fallback_said = True
            await self.clock.sleep(cfg.poll_minutes * 60)

    async def _site(self, loop: SiteLoop) -> None:
        site = loop.site
        while not self.stop.is_set():
            try:
                await loop.cycle()
            except Exception as exc:  # one bad cycle must not end the site's control
                self.metrics.cycle_failures.inc(site=site.config.id)
                log.exception("cycle_failed", site=site.config.id, error=str(exc))
            now = self.clock.now()
            to_boundary = (half_hour_start(now) + timedelta(minutes=30) - now).total_seconds()
            wait = min(self.config.cycle_seconds, to_boundary + 1.0)
            await _first(self.clock.sleep(wait), site.wake.wait(), self.stop.wait())

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
        await self._restore()
        api_runner = None
        try:  # whatever fails from here on, the finally below closes what was opened
            await self.backends.start(self.sites)
            if self.config.api.enabled:
                from flexd.api.app import start_api

                api_runner = await start_api(self.service, self.config.api)
                self.api_port = _runner_port(api_runner)
                log.info("api_listening", host=self.config.api.host, port=self.api_port)
            if on_started is not None:
                await on_started(self)
            async with asyncio.TaskGroup() as tg:
                background: list[asyncio.Task[Any]] = []
                for site in self.sites.values():
                    on_state = self.loops[site.config.id].on_state
                    for dev in site.devices.values():
                        poller = run_poller(dev, self.clock, self.metrics, on_state, self.stop)
                        background.append(tg.create_task(poller, name=f"poll:{dev.id}"))
                        if dev.vehicle is not None:
                            car = run_vehicle_poller(dev, self.clock, self._vehicle_soc, self.stop)
                            background.append(tg.create_task(car, name=f"vehicle:{dev.id}"))
                background.append(tg.create_task(self._price_feed(), name="prices"))
                if self.config.mqtt.enabled:
                    from flexd.mqtt.bus import MqttBus

                    bus = MqttBus(self.service, self.config.mqtt, list(self.sites))
                    background.append(tg.create_task(bus.run(), name="mqtt"))
                loops = [
                    tg.create_task(self._site(loop), name=f"site:{sid}")
                    for sid, loop in self.loops.items()
                ]
                tg.create_task(self._until(), name="until")
                await self.stop.wait()
                # Loops end between cycles, so a command in flight finishes; a cycle stuck
                # longer than this is cancelled rather than holding the shutdown forever.
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
            for loop in self.loops.values():
                await loop.safe_mode()
            if api_runner is not None:
                await api_runner.cleanup()
            await self.backends.close()
            self.solver_pool.shutdown(wait=False, cancel_futures=True)

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
