"""A fleet on this machine: the device simulator in one process, N ``flexd run`` instances in
others, one PostgreSQL database and one MQTT broker. Used by the fleet e2e test and by
``bench/fleet.py``; every part is the real program, talking over loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flexd.config import hash_token

REPO = Path(__file__).resolve().parents[2]
ADMIN = "fleet-admin-token"


async def wait_for(what: str, check: Any, timeout: float, every: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy (returned); AssertionError on time."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FleetRig:
    workdir: Path
    url: str  # the fleet's PostgreSQL database
    broker: tuple[str, int]
    sites: int = 30
    speed: float = 100.0
    start: datetime = datetime(2026, 1, 15, 23, 40, tzinfo=UTC)
    lease_s: float = 4.0
    cycle_s: float = 300.0  # simulated
    poll_s: float = 60.0  # simulated
    anchor: float = field(default_factory=lambda: time.time() + 5.0)
    plug_in: str | None = None  # local HH:MM the cars plug in (None: plugged in from the start)
    sim: subprocess.Popen[bytes] | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    # --- time -----------------------------------------------------------------------------

    def sim_now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.anchor) * self.speed)

    def real_s(self, sim_seconds: float) -> float:
        return sim_seconds / self.speed

    # --- processes ------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(REPO)}

    def start_simulator(self) -> Path:
        out = self.workdir / "sites.toml"
        log = (self.workdir / "sim.log").open("wb")
        self.sim = subprocess.Popen(
            [sys.executable, "-m", "simulator", "fleet", "--sites", str(self.sites),
             "--broker", f"{self.broker[0]}:{self.broker[1]}", "--out", str(out),
             "--start", self.start.isoformat(), "--speed", str(self.speed),
             "--anchor-unix", str(self.anchor), "--status-s", str(self.poll_s / 2),
             *(["--plug-in", self.plug_in] if self.plug_in else [])],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=self._env(),
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not out.exists():
            if self.sim.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.workdir / "sim.log").read_text()[-2000:])
            time.sleep(0.2)
        return out

    def import_sites(self, path: Path) -> dict[str, int]:
        got = subprocess.run(
            [sys.executable, "-m", "flexd", "sites", "import", str(path), "--database", self.url],
            capture_output=True, text=True, cwd=REPO, env=self._env(), timeout=120,
        )  # fmt: skip
        if got.returncode != 0:
            raise RuntimeError(got.stderr)
        return dict(json.loads(got.stdout))

    def config(self, name: str) -> Path:
        port = self.ports.setdefault(name, free_port())
        text = f"""
[daemon]
database = "{self.url}"
log_format = "json"
cycle_seconds = {self.cycle_s}

[api]
host = "127.0.0.1"
port = {port}
[[api.tokens]]
name = "ops"
role = "admin"
sha256 = "{hash_token(ADMIN)}"

[mqtt]
enabled = false
host = "{self.broker[0]}"
port = {self.broker[1]}

[prices]
source = "simulator"

[simulation]
start = "{self.start.isoformat()}"
speed = {self.speed}
hours = 1000
anchor_unix = {self.anchor}

[fleet]
enabled = true
instance_id = "{name}"
lease_seconds = {self.lease_s}
"""
        path = self.workdir / f"{name}.toml"
        path.write_text(text)
        return path

    def start_instance(self, name: str) -> None:
        cfg = self.config(name)
        log = (self.workdir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "flexd", "run", "--config", str(cfg), "--simulate"],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=self._env(),
        )  # fmt: skip

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.procs[name].send_signal(sig)

    def stop_all(self, timeout: float = 60) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, p in self.procs.items():
            try:
                codes[name] = p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = None
        if self.sim is not None and self.sim.poll() is None:
            self.sim.send_signal(signal.SIGTERM)
            try:
                self.sim.wait(15)
            except subprocess.TimeoutExpired:
                self.sim.kill()
        return codes

    # --- the API --------------------------------------------------------------------------

    def api(self, name: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[name]}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def metrics(self, name: str) -> str:
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports[name]}/metrics",
                                     headers={"Authorization": f"Bearer {ADMIN}"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as resp:
            return str(resp.read().decode())

    def log_lines(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in (self.workdir / f"{name}.log").read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
