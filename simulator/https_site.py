"""An aiohttp application served over HTTPS on 127.0.0.1 with a throwaway self-signed
certificate, for the simulators of devices that speak HTTPS (gateways, clouds).

The certificate is made with the ``openssl`` command (the ``cryptography`` package is not a
dependency); clients trust it through :attr:`HttpsSite.cafile`.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import tempfile
from pathlib import Path

from aiohttp import web

from simulator.vehicle_api import make_self_signed


class HttpsSite:
    def __init__(self, app: web.Application, prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        self.port = 0
        self._dir: Path | None = None
        self._runner: web.AppRunner | None = None

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
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
