"""One instance's part in the fleet: heartbeat, renew, claim its share, give back the rest.

Every ``lease_seconds / 3`` (real time, whatever the daemon's clock):

1. renew every lease held; a site missing from the answer was taken over while this instance
   was paused or cut off, and is stopped here at once (its writes are already refused);
2. take up to a fair share of unowned or expired sites: ``min(max_sites, ceil(sites / live
   instances))``. A site claimed is restored from the database and re-planned by its new loop;
3. give back sites beyond the share plus one (a new instance joined), a few per round, so the
   fleet evens out without a storm of handovers.

An instance also stops acting on a site by its own monotonic clock once the lease it last
renewed would have expired (:meth:`may_act`), even before the database says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable
from typing import Protocol

import structlog

from flexd.config.model import FleetConfig
from flexd.fleet.leases import Claim, Leases
from flexd.obs.metrics import Metrics

log = structlog.get_logger("flexd.fleet")
SHED_PER_ROUND = 10


class SiteHost(Protocol):
    """What the daemon does when a site is won or lost."""

    def start_site(self, claim: Claim) -> Awaitable[bool]: ...

    def stop_site(self, site: str, why: str) -> Awaitable[None]: ...

    def refresh_catalogue(self) -> Awaitable[None]: ...


class FleetMember:
    def __init__(self, cfg: FleetConfig, leases: Leases, host: SiteHost, metrics: Metrics) -> None:
        self.cfg = cfg
        self.leases = leases
        self.host = host
        self.metrics = metrics
        self.instance = leases.instance
        self.period = cfg.lease_seconds / 3
        self.owned: dict[str, int] = {}  # site -> epoch held
        self.valid_until: dict[str, float] = {}  # site -> monotonic instant the lease runs out
        self.takeovers = 0

    def may_act(self, site: str) -> bool:
        return site in self.owned and time.monotonic() < self.valid_until.get(site, 0.0)

    async def run(self, stop: asyncio.Event) -> None:
        await self.leases.register()
        # Let instances started together see each other before the first claim.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.period / 2)
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # the database is away: leases run out by themselves
                log.warning("fleet_round_failed", error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period)

    async def tick(self) -> None:
        began = time.monotonic()  # a lease renewed now lasts from before the request was sent
        held = await self.leases.renew()
        for site, epoch in list(self.owned.items()):
            if held.get(site) == epoch:
                self.valid_until[site] = began + self.cfg.lease_seconds
            else:
                await self.lose(site, "taken over")
        await self.host.refresh_catalogue()
        total = await self.leases.site_count()
        live = await self.leases.live_instances()
        share = min(self.cfg.max_sites, math.ceil(total / live)) if total else 0
        if len(self.owned) < share:
            began = time.monotonic()
            for claim in await self.leases.claim(share - len(self.owned)):
                self.owned[claim.site] = claim.epoch
                self.valid_until[claim.site] = began + self.cfg.lease_seconds
                if claim.epoch > 1:
                    self.takeovers += 1
                    self.metrics.fleet_takeovers.inc()
                if not await self.host.start_site(claim):
                    await self.give_back([claim.site], "cannot start")
        elif len(self.owned) > share + 1:
            excess = sorted(self.owned)[: min(SHED_PER_ROUND, len(self.owned) - share)]
            await self.give_back(excess, "over fair share")
        self.metrics.fleet_sites_owned.set(len(self.owned))
        self.metrics.fleet_instances_live.set(live)
        self.metrics.fleet_sites_total.set(total)

    async def lose(self, site: str, why: str) -> None:
        """The lease is gone (or the epoch stale): stop acting now."""
        if self.owned.pop(site, None) is None:
            return
        self.valid_until.pop(site, None)
        log.warning("lease_lost", site=site, why=why)
        self.metrics.fleet_leases_lost.inc()
        await self.host.stop_site(site, why)

    async def give_back(self, sites: list[str], why: str) -> None:
        held = {s: self.owned[s] for s in sites if s in self.owned}
        for site in held:
            self.owned.pop(site, None)
            self.valid_until.pop(site, None)
            await self.host.stop_site(site, why)  # stopped first: then nothing acts on it
        await self.leases.release(held)
        if held:
            log.info("leases_released", sites=len(held), why=why)

    async def shutdown(self) -> None:
        """A clean stop: every site stopped, its lease released, the instance marked stopped."""
        await self.give_back(list(self.owned), "instance stopping")
        await self.leases.stopped()
