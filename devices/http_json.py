"""JSON over HTTPS for device adapters, with every transport and status error translated once
into the devices.errors tree (401 -> AuthenticationFailed, 5xx/timeouts/refused ->
DeviceUnavailable, 403 -> NotSupported, anything unparseable -> BadPayload)."""

from __future__ import annotations

import json
import ssl
from typing import Any

import aiohttp

from devices.errors import AuthenticationFailed, BadPayload, DeviceUnavailable, NotSupported


class JsonHttp:
    def __init__(self, what: str, ssl_context: ssl.SSLContext | bool = True) -> None:
        self.what = what
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self, method: str, url: str, *, token: str | None = None, payload: object = None,
        expect: tuple[int, ...] = (200,),
    ) -> Any:  # fmt: skip
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._session.request(
                method, url, headers=headers, json=payload, ssl=self._ssl
            ) as resp:
                text, status = await resp.text(), resp.status
        except aiohttp.ClientConnectorCertificateError as exc:
            raise DeviceUnavailable(f"{self.what}: certificate not trusted: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DeviceUnavailable(f"{self.what}: {type(exc).__name__}: {exc}") from exc
        if status == 401:
            raise AuthenticationFailed(f"{self.what}: credentials refused (401)")
        if status == 403:
            raise NotSupported(f"{self.what}: {method} {url.split('/', 3)[-1]} is forbidden (403)")
        if status in (408, 429) or status >= 500:
            raise DeviceUnavailable(f"{self.what}: HTTP {status}")
        if status not in expect:
            raise BadPayload(f"{self.what}: unexpected HTTP {status} from {method}")
        try:
            return json.loads(text) if text else None
        except ValueError as exc:
            raise BadPayload(f"{self.what}: body is not JSON: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
