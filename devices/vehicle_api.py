"""The car's own cloud API, for its state of charge when the charger does not report one.

Shaped like the common owner APIs: an OAuth bearer access token and, optionally, a refresh
token (both obtained by the user's one-off login outside flexd); on a 401 the adapter trades the
refresh token for a new access token once (``POST token_url``, grant ``refresh_token``) and
retries; a refused refresh is :class:`AuthenticationFailed`.
``GET {base}/api/1/vehicles/{vin}/vehicle_data`` answers
``{"response": {"charge_state": {"battery_level", "charging_state", "charge_limit_soc",
"timestamp"}}}`` with the timestamp in epoch milliseconds. Errors are translated once, in
:meth:`VehicleApiAdapter._request`: 401/403 need a person (:class:`AuthenticationFailed`), timeouts,
connection failures, 408/429/5xx are worth a retry (:class:`DeviceUnavailable`), anything else
unexpected is :class:`BadPayload`.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp

from devices.errors import AuthenticationFailed, BadPayload, DeviceUnavailable
from devices.ev_soc import SocReading
from devices.retry import with_timeout


@dataclass(frozen=True, slots=True)
class VehicleState:
    soc_pct: float
    measured_at: datetime
    charging_state: str  # the API's own word: Charging, Stopped, Complete, Disconnected, ...
    charge_limit_soc_pct: float | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def soc_reading(self) -> SocReading:
        return SocReading(self.soc_pct, self.measured_at)


def parse_vehicle_data(body: object) -> VehicleState:
    """Turn a ``vehicle_data`` answer into a :class:`VehicleState`, or raise BadPayload."""
    if not isinstance(body, dict) or not isinstance(body.get("response"), dict):
        raise BadPayload("response: missing")
    cs = body["response"].get("charge_state")
    if not isinstance(cs, dict):
        raise BadPayload("response.charge_state: missing (car asleep or offline?)")
    level = cs.get("battery_level")
    if not isinstance(level, int | float) or isinstance(level, bool) or not 0 <= level <= 100:
        raise BadPayload(f"charge_state.battery_level: {level!r} is not a percentage")
    ts = cs.get("timestamp")
    if not isinstance(ts, int | float) or isinstance(ts, bool) or ts <= 0:
        raise BadPayload(f"charge_state.timestamp: {ts!r} is not epoch milliseconds")
    limit = cs.get("charge_limit_soc")
    if limit is not None and not isinstance(limit, int | float):
        raise BadPayload(f"charge_state.charge_limit_soc: {limit!r} is not a number")
    return VehicleState(
        soc_pct=float(level),
        measured_at=datetime.fromtimestamp(ts / 1000.0, tz=UTC),
        charging_state=str(cs.get("charging_state", "")),
        charge_limit_soc_pct=None if limit is None else float(limit),
        raw=cs,
    )


class VehicleApiAdapter:
    brand: ClassVar[str] = "vehicle-api"

    def __init__(
        self, base_url: str, vin: str, token: str, *, refresh_token: str | None = None,
        token_url: str | None = None, client_id: str = "ownerapi",
        ssl_context: ssl.SSLContext | None = None, timeout_s: float = 10.0,
    ) -> None:  # fmt: skip
        if not base_url.startswith("https://"):
            raise ValueError("base_url: must be https:// (the token travels with every request)")
        if not vin:
            raise ValueError("vin: must not be empty")
        self.base_url = base_url.rstrip("/")
        self.vin = vin
        self._token = token
        self._refresh_token = refresh_token
        self.token_url = token_url or f"{self.base_url}/oauth2/v3/token"
        if not self.token_url.startswith("https://"):
            raise ValueError("token_url: must be https://")
        self.client_id = client_id
        self.refreshes = 0
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # the token never reaches a log line
        return f"VehicleApiAdapter({self.base_url!r}, vin={self.vin!r})"

    def set_token(self, token: str) -> None:
        """Swap in a refreshed access token."""
        self._token = token

    async def read_vehicle(self) -> VehicleState:
        return await with_timeout(self._read(), self.timeout_s, "vehicle API")

    async def _read(self) -> VehicleState:
        url = f"{self.base_url}/api/1/vehicles/{self.vin}/vehicle_data"
        try:
            body = await self._request("GET", url)
        except AuthenticationFailed:
            if self._refresh_token is None:
                raise
            await self._refresh()
            body = await self._request("GET", url)
        return parse_vehicle_data(body)

    async def _refresh(self) -> None:
        grant = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "refresh_token": self._refresh_token,
        }
        body = await self._request("POST", self.token_url, grant)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BadPayload("token endpoint: access_token missing")
        self._token = token
        rotated = body.get("refresh_token") if isinstance(body, dict) else None
        if isinstance(rotated, str) and rotated:
            self._refresh_token = rotated
        self.refreshes += 1

    async def _request(self, method: str, url: str, payload: object = None) -> object:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Accept": "application/json"}
        if payload is None:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            async with self._session.request(
                method, url, headers=headers, json=payload, ssl=self._ssl
            ) as resp:
                text = await resp.text()
                status = resp.status
        except aiohttp.ClientConnectorCertificateError as exc:
            raise DeviceUnavailable(f"vehicle API: certificate not trusted: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DeviceUnavailable(f"vehicle API: {type(exc).__name__}: {exc}") from exc
        if status in (401, 403):
            what = "refresh token" if payload is not None else "access token"
            raise AuthenticationFailed(f"vehicle API: {what} refused ({status})")
        if status in (408, 429) or status >= 500:
            raise DeviceUnavailable(f"vehicle API: HTTP {status}")
        if status == 404:
            raise BadPayload(f"vehicle API: vin {self.vin} not found on this account")
        if status != 200:
            raise BadPayload(f"vehicle API: unexpected HTTP {status}")
        try:
            return json.loads(text)
        except ValueError as exc:
            raise BadPayload(f"vehicle API: body is not JSON: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
