"""An aiohttp application served over HTTPS on 127.0.0.1 with a throwaway self-signed
certificate, for the simulators of devices that speak HTTPS (gateways, clouds), with the
connection-level faults every such simulator honours.

The certificate is made with the ``openssl`` command (the ``cryptography`` package is not a
dependency); clients trust it through :attr:`HttpsSite.cafile`.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from simulator.faults import Faults

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def make_self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` for ``host`` into ``directory`` with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    proc = await asyncio.create_subprocess_exec(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
        "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"openssl failed: {err.decode(errors='replace').strip()}")
    return cert, key


class HttpsSite:
    """``app`` is the simulator's application: add routes to ``app.router``. Every request
    first meets the faults: refuse_connections drops it without an answer, hang holds it until
    the site stops."""

    def __init__(self, faults: Faults, prefix: str) -> None:
        self.faults = faults
        self.prefix = prefix
        self.app = web.Application(middlewares=[self._faults])
        self.port = 0
        self._release = asyncio.Event()
        self._dir: Path | None = None
        self._runner: web.AppRunner | None = None

    @web.middleware
    async def _faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.faults.refuse_connections:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503)
        if self.faults.hang:
            await self._release.wait()
        return await handler(request)

    @property
    def cafile(self) -> Path:
        if self._dir is None:
            raise RuntimeError("the simulator is not started")
        return self._dir / "cert.pem"

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this site's certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cafile))

    async def start(self, port: int = 0) -> int:
        self._dir = Path(tempfile.mkdtemp(prefix=f"flexd-{self.prefix}-"))
        cert, key = await make_self_signed(self._dir)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock, ssl_context=ctx).start()
        return self.port

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
