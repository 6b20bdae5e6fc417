"""Fixtures shared by the whole suite: real data location, a private mosquitto broker."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
EXTVAL = REPO.parent / "shared" / "extval-fixtures"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data beside the repo; tests that need it skip on a user's clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (only in development and CI)")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _planner_compiled() -> None:
    """The planner's numba kernels compile (10-20 s on a fresh clone) before any test starts a
    scaled clock: a daemon test at 4000x would otherwise lose its night to the first plan.
    bootstrap.run_daemon does the same for `flexd run` and `flexd demo`."""
    import optimiser

    optimiser.warm_up()


@pytest.fixture(scope="session")
def extval() -> Path:
    """Real device captures beside the repo (never copied in); tests skip without them."""
    if not EXTVAL.is_dir():
        pytest.skip("../shared/extval-fixtures is not present (only in development and CI)")
    return EXTVAL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


class Broker:
    """A private mosquitto on a free loopback port that a test may stop and start again."""

    def __init__(self, binary: str, workdir: Path, tls: tuple[Path, Path] | None = None) -> None:
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        conf = f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        if tls is not None:
            conf += f"certfile {tls[0]}\nkeyfile {tls[1]}\n"
            if os.geteuid() == 0:  # else mosquitto drops to its own user, who cannot read tmp
                conf += "user root\n"
        self.conf.write_text(conf)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def _require_mosquitto() -> str:
    binary = _mosquitto_binary()
    if binary is None:
        if os.environ.get("FLEXD_REQUIRE_MOSQUITTO"):
            pytest.fail("mosquitto is required (FLEXD_REQUIRE_MOSQUITTO) but not installed")
        pytest.skip("mosquitto not installed")
    return binary


def self_signed(directory: Path) -> tuple[Path, Path]:
    """cert.pem and key.pem for 127.0.0.1, made with the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A real broker per test. Skips if mosquitto is absent, unless CI requires it."""
    broker = Broker(_require_mosquitto(), tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto_tls(tmp_path: Path) -> Iterator[Broker]:
    """A real broker that speaks only TLS, with a self-signed certificate (broker.cafile)."""
    binary = _require_mosquitto()
    cert, key = self_signed(tmp_path)
    broker = Broker(binary, tmp_path, tls=(cert, key))
    broker.cafile = cert  # type: ignore[attr-defined]
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request, tmp_path):
    """Where a store lives, once per backend: a SQLite file, or a fresh PostgreSQL database
    (tests.pg: skipped without a server unless FLEXD_REQUIRE_POSTGRES=1)."""
    if request.param == "sqlite":
        yield tmp_path / "flexd.sqlite"
        return
    from tests.pg import pg_database

    async with pg_database() as url:
        yield url
