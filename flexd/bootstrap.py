"""Builds and runs a daemon from a Config: logging, clock, storage, backends, summary."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import perf_counter

import structlog

import optimiser
from core.clock import Clock, ScaledClock, SystemClock
from core.timegrid import LONDON
from flexd.config import Config, ConfigError, load_config
from flexd.config.parse import database_target
from flexd.daemon import Daemon
from flexd.obs import logs
from flexd.storage import Storage
from flexd.storage.driver import redact
from flexd.wiring import Backends


def run_from_file(command: str, path: Path, **options: object) -> int:
    """``flexd run`` and ``flexd demo``: load the config (exit 2 with one stderr line when it is
    bad), then run the daemon with ``options`` (the keyword arguments of :func:`run_daemon`)."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"flexd {command}: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_daemon(config, **options))  # type: ignore[arg-type]


def default_sim_start(now: datetime) -> datetime:
    """Today's local noon: a demo day then runs through the evening peak and the night."""
    local = now.astimezone(LONDON)
    return datetime.combine(local.date(), time(12), tzinfo=LONDON).astimezone(UTC)


def page_url(config: Config, port: int) -> str:
    """Where the web page is: the API's address (loopback when it listens on every address)."""
    api = config.api
    host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if api.tls_cert is not None else "http"
    return f"{scheme}://{host}:{port}/"


async def _print_page_url(daemon: Daemon) -> None:
    if daemon.api_port is not None:
        print(f"web page: {page_url(daemon.config, daemon.api_port)}  (sign in with an API "
              "token; the demo's are demo-app-token and demo-admin-token)", flush=True)


async def run_daemon(
    config: Config,
    *,
    simulate: bool = False,
    speed: float | None = None,
    hours: float | None = None,
    database: Path | str | None = None,
    fresh_database: bool = False,
    api_port: int | None = None,
    summary: bool = False,
    announce_page: bool = False,
) -> int:
    logs.configure(config.log_format)
    log = structlog.get_logger("flexd")
    if database is not None:
        target = database_target(str(database), Path.cwd())
        config = dataclasses.replace(config, database=target)
    if api_port is not None:
        config = dataclasses.replace(config, api=dataclasses.replace(config.api, port=api_port))
    if fresh_database and isinstance(config.database, Path):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{config.database}{suffix}").unlink(missing_ok=True)
    try:
        storage = await Storage.open(config.database, config.database_password)
    except Exception as exc:  # the one line an operator needs, never a traceback
        where = redact(str(config.database))
        print(f"flexd: database {where}: {type(exc).__name__}: {exc}".splitlines()[0],
              file=sys.stderr)  # fmt: skip
        return 2
    # The planner's compiled kernels load (or compile, 10-20 s on a fresh install) before any
    # clock starts: on simulated time a stalled first plan would lose hours of the run.
    began = perf_counter()
    optimiser.warm_up()
    processes = None
    if config.planner_processes > 0:  # started now too: before any clock
        from flexd.control.solve_procs import SolverProcesses

        processes = SolverProcesses(config.planner_processes)
        processes.start()
    log.info("planner_ready", seconds=round(perf_counter() - began, 2),
             solver_processes=config.planner_processes)  # fmt: skip
    clock: Clock
    until = None
    if simulate:
        sim = config.simulation
        start = sim.start or default_sim_start(datetime.now(UTC))
        clock = ScaledClock(start, speed or sim.speed, sim.anchor_unix)
        until = start + timedelta(hours=hours if hours is not None else sim.hours)
    else:
        clock = SystemClock()
        if hours is not None:
            until = clock.now() + timedelta(hours=hours)
    try:
        # Simulators come in only through flexd.simulation: devices when simulating, and the
        # price feed when the config asks for the simulated one.
        backends = Backends(config, clock)
        if simulate or config.prices.source == "simulator":
            from flexd.simulation import simulated_backends

            backends = simulated_backends(config, clock, devices=simulate)
        daemon = Daemon(config, clock, storage, backends, until=until, solver_processes=processes)
        daemon.install_signal_handlers()
        log.info("starting", sites=len(config.sites), simulate=simulate,
                 start=clock.now().isoformat(), database=storage.where)  # fmt: skip
        try:
            await daemon.run(on_started=_print_page_url if announce_page else None)
        except (OSError, ssl.SSLError) as exc:  # the API's address or certificate
            print(f"flexd: start-up failed: {type(exc).__name__}: {exc}".splitlines()[0],
                  file=sys.stderr)  # fmt: skip
            return 2
        if summary:
            from flexd.report.summary import print_summary

            await print_summary(daemon, sys.stdout)
    finally:  # whatever failed, close the store: its worker thread would keep the process alive
        await storage.close()
        if processes is not None:
            processes.close()
    log.info("stopped", database=redact(str(config.database)))
    return 0
