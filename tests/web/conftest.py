"""A real daemon on simulated time (two accounts' sites, every device simulated on a real socket,
one site's battery then made unreachable) serving the web page, and Debian's chromium driven by
Playwright. Nothing is downloaded: chromium comes from apt (``.ci/run`` installs it).

Without /usr/bin/chromium the browser tests skip, unless FLEXD_REQUIRE_CHROMIUM is set (CI sets
it), when they fail instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from core.clock import ScaledClock
from flexd.config import hash_token, parse_config
from flexd.daemon import Daemon
from flexd.simulation import simulated_backends
from flexd.storage import Storage

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
APP, OTHER, NOBODY, ADMIN, BILL = "app-A1", "app-A2", "app-A3", "admin-ops", "billing-1"
# The evening before the spring clock change: the next 24 hours hold the night that has no
# 01:00-02:00 (29 March 2026), so the chart's local times must jump from 00:30 to 02:00.
START = datetime(2026, 3, 28, 16, 0, tzinfo=UTC)
SPEED = 60.0  # a simulated minute per real second: the page's polls see the world move


def need_chromium() -> None:
    if CHROMIUM.exists():
        return
    missing = f"{CHROMIUM} is missing (apt-get install chromium)"
    if os.environ.get("FLEXD_REQUIRE_CHROMIUM"):
        pytest.fail(f"FLEXD_REQUIRE_CHROMIUM is set but {missing}")
    pytest.skip(missing)


def _config(tmp: Path):
    def battery(sid):
        return {"id": f"{sid}-battery", "brand": "solaredge", "simulate": True,
                "poll_seconds": 30, "timeout_s": 0.3}

    charger = {"id": "home-charger", "brand": "ocpp", "charge_point_id": "CP-HOME",
               "simulate": True, "poll_seconds": 30,
               # no plug-in time: the car is plugged in from the start
               "ev": {"capacity_kwh": 60, "max_charge_kw": 7.4, "efficiency": 0.9,
                      "initial_soc_pct": 30},
               "preferences": {"weekday_ready_by": "07:00", "weekend_ready_by": "08:00",
                               "target_soc_pct": 80}}
    tokens = [
        {"name": "a1", "role": "app", "account": "A1", "sha256": hash_token(APP)},
        {"name": "a2", "role": "app", "account": "A2", "sha256": hash_token(OTHER)},
        {"name": "a3", "role": "app", "account": "A3", "sha256": hash_token(NOBODY)},
        {"name": "ops", "role": "admin", "sha256": hash_token(ADMIN)},
        {"name": "bill", "role": "billing", "sha256": hash_token(BILL)},
    ]
    doc = {
        "daemon": {"database": str(tmp / "flexd.sqlite"), "log_format": "json",
                   "cycle_seconds": 120},
        "api": {"port": 0, "tokens": tokens},
        "prices": {"source": "simulator"},
        "sites": [
            {"id": "home", "account": "A1", "meter": "M-HOME", "tariff": "io-go",
             "devices": [battery("home"), charger]},
            {"id": "away", "account": "A2", "meter": "M-AWAY", "tariff": "io-go",
             "devices": [battery("away")]},
        ],
    }  # fmt: skip
    return parse_config(doc, tmp, env={})


class DaemonThread:
    """The daemon on its own event loop in a thread, so the test thread can drive the browser
    with Playwright's synchronous API."""

    def __init__(self, tmp: Path) -> None:
        self.cfg = _config(tmp)
        self.started = threading.Event()
        self.error: BaseException | None = None
        self.daemon: Daemon | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="flexd-web-daemon", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start(), never lost in the thread
            self.error = exc
            self.started.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        clock = ScaledClock(START, SPEED)
        storage = await Storage.open(self.cfg.database)
        self.daemon = Daemon(self.cfg, clock, storage, simulated_backends(self.cfg, clock),
                             until=START + timedelta(hours=40))  # fmt: skip

        async def on_started(d: Daemon) -> None:
            self.started.set()

        try:
            await self.daemon.run(on_started=on_started)
        finally:
            await storage.close()

    def start(self) -> None:
        self.thread.start()
        if not self.started.wait(60) or self.error is not None:
            raise RuntimeError(f"the daemon did not start: {self.error!r}")

    def stop(self) -> None:
        if self.loop is not None and self.daemon is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.daemon.stop.set)
        self.thread.join(60)

    @property
    def base(self) -> str:
        assert self.daemon is not None and self.daemon.api_port is not None
        return f"http://127.0.0.1:{self.daemon.api_port}"

    def take_offline(self, site: str) -> None:
        """Make a site's simulated battery refuse and ignore every connection (its simulator's
        fault switches): the daemon then marks it offline."""
        d: Any = self.daemon  # the simulation's hooks are typed as the DeviceHooks protocol
        assert d is not None
        world = d.backends.hooks.sim_sites[site].world
        sims = [getattr(c, "__self__", None) for c in d.backends._closers]
        sim: Any = next(s for s in sims if getattr(s, "world", None) is world
                        and hasattr(s, "faults"))  # fmt: skip
        sim.faults.refuse_connections = True
        sim.faults.hang = True

    def wait_for(self, what: str, check, timeout: float = 60.0) -> None:
        """Wait (bounded) for a state of the running daemon; fail, never hang."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                raise RuntimeError(f"the daemon failed: {self.error!r}")
            if check(self.daemon):
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def get(self, path: str, token: str) -> tuple[int, dict]:
        return self.post(path, token, None)

    def post(self, path: str, token: str, body: dict | None,
             headers: dict[str, str] | None = None) -> tuple[int, dict]:  # fmt: skip
        """One API request (a GET without ``body``): its status and JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                     **(headers or {})},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def flexd_web(tmp_path_factory):
    need_chromium()
    d = DaemonThread(tmp_path_factory.mktemp("web"))
    d.start()
    try:
        now = lambda dm: dm.clock.now()  # noqa: E731
        d.wait_for("a plan of 24 h or more and a polled, plugged-in charger at home", lambda dm: (
            dm.sites["home"].plan is not None
            and dm.sites["home"].plan.end >= now(dm) + timedelta(hours=24)
            and dm.sites["home"].devices["home-charger"].state is not None
            and dm.sites["home"].devices["home-charger"].state.plugged_in
            and dm.sites["away"].plan is not None))  # fmt: skip
        d.take_offline("away")
        d.wait_for("the away battery offline", lambda dm: (
            dm.sites["away"].devices["away-battery"].health(now(dm)).value == "offline"))
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def browser(flexd_web):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser context (its own session storage) at 1280x800; its screenshot is saved
    under test-artifacts/web/ whatever the outcome."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # A console error other than an HTTP error status (a 404 the page expects) is a bug: a
    # script error or a Content-Security-Policy violation.
    pg.on("console", lambda m: errors.append(m.text)
          if m.type == "error" and "Failed to load resource" not in m.text else None)
    pg.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)  # a loaded CI machine: fail late rather than flake
    try:
        yield pg
        assert errors == [], errors  # no script error, no CSP violation
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        finally:
            context.close()


def sign_in(page, base: str, token: str) -> None:
    page.goto(base + "/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
