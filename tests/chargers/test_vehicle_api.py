"""Vehicle-API adapter against the HTTPS vehicle simulator on loopback."""

import ssl
from datetime import UTC, datetime, timedelta

import pytest

from core.clock import ManualClock
from devices.base import SocSource
from devices.errors import AuthenticationFailed, BadPayload, DeviceUnavailable
from devices.ev_soc import choose_soc
from devices.vehicle_api import VehicleApiAdapter
from simulator.ev import EV
from simulator.vehicle_api import VehicleApiSimulator

T0 = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)
VIN = "5YJ3E7EB0KF000001"


class Rig:
    def __init__(self, clock, ev, sim, ctx):
        self.clock, self.ev, self.sim, self.ctx = clock, ev, sim, ctx
        self.adapters = []

    def adapter(self, token="sim-access-token", vin=VIN, ctx="trusted", timeout_s=2.0):
        a = VehicleApiAdapter(
            self.sim.base_url, vin, token, ssl_context=self.ctx if ctx == "trusted" else ctx, timeout_s=timeout_s
        )
        self.adapters.append(a)
        return a


@pytest.fixture
async def rig():
    clock = ManualClock(T0)
    ev = EV(clock, capacity_kwh=60.0, soc_kwh=24.0, plugged_in=True)
    sim = VehicleApiSimulator(ev, clock, vin=VIN)
    await sim.start()
    ctx = ssl.create_default_context(cafile=str(sim.cafile))
    r = Rig(clock, ev, sim, ctx)
    yield r
    for a in r.adapters:
        await a.close()
    await sim.stop()


async def test_soc_is_read_with_its_instant(rig):
    v = await rig.adapter().read_vehicle()
    assert v.soc_pct == 40 and v.measured_at == T0
    assert v.charging_state == "Stopped" and v.charge_limit_soc_pct == 90


async def test_soc_follows_the_car_over_simulated_time(rig):
    a = rig.adapter()
    rig.ev.set_offered(7200.0)
    rig.clock.advance(3600)
    v = await a.read_vehicle()
    assert v.charging_state == "Charging"
    assert v.soc_pct == 52  # 24 + 7.2 kWh of 60 kWh
    assert v.measured_at == T0 + timedelta(hours=1)


async def test_vehicle_reading_feeds_the_soc_fallback(rig):
    v = await rig.adapter().read_vehicle()
    rig.clock.advance(600)
    got = choose_soc(rig.clock.now(), charger=None, vehicle=v.soc_reading())
    assert got.source == SocSource.VEHICLE_API and got.soc_pct == 40 and got.age_s == 600


async def test_expired_token_is_authentication_failed(rig):
    a = rig.adapter()
    await a.read_vehicle()
    rig.sim.faults.expire_token = True
    with pytest.raises(AuthenticationFailed):
        await a.read_vehicle()


async def test_wrong_token_is_authentication_failed(rig):
    with pytest.raises(AuthenticationFailed):
        await rig.adapter(token="nope").read_vehicle()


async def test_hang_is_device_unavailable(rig):
    rig.sim.faults.hang = True
    with pytest.raises(DeviceUnavailable, match="no answer"):
        await rig.adapter(timeout_s=0.3).read_vehicle()


async def test_dropped_connection_is_device_unavailable(rig):
    rig.sim.faults.refuse_connections = True
    with pytest.raises(DeviceUnavailable):
        await rig.adapter().read_vehicle()


async def test_malformed_body_is_bad_payload(rig):
    rig.sim.faults.malformed = True
    with pytest.raises(BadPayload, match="JSON"):
        await rig.adapter().read_vehicle()


async def test_unknown_vin_is_bad_payload(rig):
    with pytest.raises(BadPayload, match="not found"):
        await rig.adapter(vin="WVWZZZ000").read_vehicle()


async def test_untrusted_certificate_is_refused(rig):
    with pytest.raises(DeviceUnavailable, match="certificate"):
        await rig.adapter(ctx=ssl.create_default_context()).read_vehicle()


async def test_server_gone_is_device_unavailable(rig):
    a = rig.adapter()
    await rig.sim.stop()
    with pytest.raises(DeviceUnavailable):
        await a.read_vehicle()


def test_plain_http_is_refused():
    with pytest.raises(ValueError, match="base_url"):
        VehicleApiAdapter("http://127.0.0.1:1", VIN, "t")


def test_token_is_not_in_repr():
    assert "secret" not in repr(VehicleApiAdapter("https://127.0.0.1:1", VIN, "secret"))


async def test_expired_access_token_is_refreshed_once_and_read_carries_on(rig):
    a = VehicleApiAdapter(rig.sim.base_url, VIN, "sim-access-token", refresh_token="sim-refresh-token", ssl_context=rig.ctx)
    rig.adapters.append(a)
    rig.sim.expire_access_token()
    v = await a.read_vehicle()
    assert v.soc_pct == 40 and a.refreshes == 1
    rig.sim.expire_access_token()  # the rotated refresh token is the one used next time
    await a.read_vehicle()
    assert a.refreshes == 2


async def test_expired_access_token_without_refresh_is_authentication_failed(rig):
    a = rig.adapter()
    rig.sim.expire_access_token()
    with pytest.raises(AuthenticationFailed, match="access token"):
        await a.read_vehicle()


async def test_revoked_credentials_fail_even_with_a_refresh_token(rig):
    a = VehicleApiAdapter(rig.sim.base_url, VIN, "sim-access-token", refresh_token="sim-refresh-token", ssl_context=rig.ctx)
    rig.adapters.append(a)
    rig.sim.faults.expire_token = True
    with pytest.raises(AuthenticationFailed, match="refresh token"):
        await a.read_vehicle()
