"""One instance's part in the fleet: heartbeat, renew, claim its share, give back the rest.

Every ``lease_seconds / 3`` (real time, whatever the daemon's clock), in two loops:

1. the heartbeat renews every lease held; a site missing from the answer was taken over while
   this instance was paused or cut off, and is stopped here at once (its writes are already
   refused);
2. the share: take up to a fair share of free sites, ``min(max_sites, ceil(sites / live
   instances))``, at most 200 a round, set up 16 at a time. A site claimed is restored from the
   database and re-planned by its new loop. Sites beyond the share plus one (an instance joined)
   are given back, a few per round and only when two rounds agree, so the fleet evens out
   without a storm of handovers.

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
CLAIM_PER_ROUND = 200  # a round stays short; the rest come next round
START_AT_ONCE = 16  # sites set up concurrently (device connections, restore reads)
BAD_SITE_BACKOFF_S = 300.0  # a site that failed to start here is left to others this long


class SiteHost(Protocol):
    """What the daemon does when a site is won or lost."""

    def start_site(self, claim: Claim) -> Awaitable[bool]: ...

    def stop_site(self, site: str, why: str, epoch: int | None = None) -> Awaitable[None]: ...

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
        self._starting: set[str] = set()  # claimed, loops not yet running
        self._claimed_at: dict[str, float] = {}
        self._over_rounds = 0
        self._bad_until: dict[str, float] = {}  # sites that failed to start here, until when
        self._tasks: set[asyncio.Task[None]] = set()

    def may_act(self, site: str) -> bool:
        return self.lease_left(site) > 0

    def lease_left(self, site: str) -> float:
        """Seconds left on the site's lease by this instance's own clock (0: not ours)."""
        if site not in self.owned:
            return 0.0
        return max(0.0, self.valid_until.get(site, 0.0) - time.monotonic())

    async def run(self, stop: asyncio.Event) -> None:
        """The heartbeat and the share, as two loops: starting a few hundred sites takes
        seconds, and the heartbeat must never wait behind it (a late beat frees every site this
        instance holds to the others, which is how a fleet churns)."""
        await self.leases.register()
        await self.beat()
        beats = asyncio.get_running_loop().create_task(self._beats(stop), name="fleet-beat")
        try:
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
        finally:
            beats.cancel()
            await asyncio.gather(beats, return_exceptions=True)

    async def _beats(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period)
            if stop.is_set():
                return
            try:
                await self.beat()
            except Exception as exc:
                log.warning("fleet_heartbeat_failed", error=f"{type(exc).__name__}: {exc}")

    async def beat(self) -> None:
        """Renew (one row for all of this instance's leases); stop sites taken over, and free
        any the database says are ours that this instance does not run (never at once: the
        stops run apart, so the next beat is never late behind them)."""
        began = time.monotonic()  # a lease renewed now lasts from before the request was sent
        held = await self.leases.renew()
        if held is None:  # lapsed (paused, cut off): any site may have a new owner by now
            for site, epoch in list(self.owned.items()):
                self.lose(site, epoch, "lease lapsed")
            await self.leases.rejoin()
            log.warning("fleet_rejoined", why="this instance's lease had lapsed")
            return
        for site, epoch in list(self.owned.items()):
            if held.get(site) == epoch:
                self.valid_until[site] = began + self.cfg.lease_seconds
            elif site not in self._starting and self._claimed_at.get(site, 0.0) < began:
                self.lose(site, epoch, "taken over")  # (a claim newer than the read is not)
        strays = {s: e for s, e in held.items() if s not in self.owned
                  and self._claimed_at.get(s, 0.0) < began}  # fmt: skip
        if strays:
            await self.leases.release(strays)
            log.warning("leases_freed", sites=len(strays), why="owned here but not run")

    async def tick(self) -> None:
        """Take up to the fair share, or give back what is over it two rounds running."""
        await self.host.refresh_catalogue()
        total = await self.leases.site_count()
        live = await self.leases.live_instances()
        share = min(self.cfg.max_sites, math.ceil(total / live)) if total else 0
        over = len(self.owned) > share + 1
        if len(self.owned) < share:
            self._over_rounds = 0
            began = time.monotonic()
            now = began
            bad = [s for s, until in self._bad_until.items() if until > now]
            claims = await self.leases.claim(min(CLAIM_PER_ROUND, share - len(self.owned)), bad)
            claimed = time.monotonic()
            for claim in claims:
                self.owned[claim.site] = claim.epoch
                # The claim beat the heartbeat inside its transaction, after ``began``.
                self.valid_until[claim.site] = began + self.cfg.lease_seconds
                self._claimed_at[claim.site] = claimed
                self._starting.add(claim.site)
                if claim.epoch > 1:
                    self.takeovers += 1
                    self.metrics.fleet_takeovers.inc()
            gate = asyncio.Semaphore(START_AT_ONCE)

            async def start(claim: Claim) -> None:
                async with gate:
                    try:
                        ok = await self.host.start_site(claim)
                    finally:
                        self._starting.discard(claim.site)
                    if not ok:  # not claimed again here for a while (another instance may)
                        self._bad_until[claim.site] = time.monotonic() + BAD_SITE_BACKOFF_S
                        await self.give_back([claim.site], "cannot start")

            await asyncio.gather(*(start(c) for c in claims))
        elif over:
            self._over_rounds += 1
            if self._over_rounds >= 2:  # not on one round's count of live instances
                excess = sorted(self.owned)[: min(SHED_PER_ROUND, len(self.owned) - share)]
                await self.give_back(excess, "over fair share")
        else:
            self._over_rounds = 0
        self.metrics.fleet_sites_owned.set(len(self.owned))
        self.metrics.fleet_instances_live.set(live)
        self.metrics.fleet_sites_total.set(total)
        sites, age = self.metrics.fleet_instance_sites, self.metrics.fleet_instance_heartbeat_age
        rows = await self.leases.instances()
        sites.clear()
        age.clear()
        for instance, owned, beat_age in rows:
            sites.set(owned, instance=instance)
            age.set(round(beat_age, 1), instance=instance)

    def lose(self, site: str, epoch: int, why: str) -> None:
        """The lease under ``epoch`` is gone (or stale): stop acting on the site now. Only that
        epoch's run stops (a site claimed again since is left alone); its stop and the release
        of the row (a no-op if another instance holds it) run apart."""
        if self.owned.get(site) != epoch:
            return
        del self.owned[site]
        self.valid_until.pop(site, None)
        log.warning("lease_lost", site=site, epoch=epoch, why=why)
        self.metrics.fleet_leases_lost.inc()

        async def stop() -> None:
            await self.host.stop_site(site, why, epoch)
            await self.leases.release({site: epoch})

        task = asyncio.get_running_loop().create_task(stop(), name=f"lose:{site}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def give_back(self, sites: list[str], why: str) -> None:
        held = {s: self.owned[s] for s in sites if s in self.owned}
        for site, epoch in held.items():
            self.owned.pop(site, None)
            self.valid_until.pop(site, None)
            await self.host.stop_site(site, why, epoch)  # stopped first: then nothing acts
        await self.leases.release(held)
        if held:
            log.info("leases_released", sites=len(held), why=why)

    async def shutdown(self) -> None:
        """A clean stop: every site stopped, its lease released, the instance marked stopped."""
        await self.give_back(list(self.owned), "instance stopping")
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=15)
        await self.leases.stopped()
