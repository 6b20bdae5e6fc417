"""OpenEVSE state mapping and claim building, without a broker."""

from datetime import UTC, datetime, timedelta

import pytest

from devices.base import ChargePeriod, ChargeProfile, ChargerStatus
from devices.openevse.adapter import amps_for, claim_at, status_from

T0 = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "plugged", "active", "status"),
    [
        (1, False, True, ChargerStatus.AVAILABLE),
        (2, True, False, ChargerStatus.PREPARING),
        (2, True, True, ChargerStatus.SUSPENDED_EV),
        (3, True, True, ChargerStatus.CHARGING),
        (254, True, False, ChargerStatus.SUSPENDED_EVSE),
        (254, False, False, ChargerStatus.AVAILABLE),
        (255, True, False, ChargerStatus.SUSPENDED_EVSE),
        (4, True, True, ChargerStatus.FAULTED),
        (5, True, True, ChargerStatus.FAULTED),
        (11, False, True, ChargerStatus.FAULTED),
        (0, False, True, ChargerStatus.UNAVAILABLE),
        (42, False, True, ChargerStatus.UNAVAILABLE),
    ],
)
def test_state_codes_map_onto_charger_status(code, plugged, active, status):
    assert status_from(code, plugged, active) == status


@pytest.mark.parametrize(
    ("power_w", "phases", "amps"),
    [
        (7360.0, 1, 32),
        (7359.0, 1, 31),  # never round up past what was asked
        (3680.0, 1, 16),
        (11040.0, 3, 16),
        (1000.0, 1, 6),  # below the 6 A pilot minimum: the minimum
        (22000.0, 1, 32),  # capped at the charger's maximum
    ],
)
def test_amps_for_power(power_w, phases, amps):
    assert amps_for(power_w, 230.0, phases, 32) == amps


def test_claim_follows_the_profile_and_disables_outside_it():
    prof = ChargeProfile(
        (
            ChargePeriod(T0, T0 + timedelta(minutes=30), 3680.0),
            ChargePeriod(T0 + timedelta(hours=1), T0 + timedelta(hours=2), 0.0),
        )
    )

    def at(minutes: float) -> dict:
        return claim_at(prof, T0 + timedelta(minutes=minutes), 230.0, 1, 32)

    assert at(-1) == {"state": "disabled"}
    assert at(0) == {"state": "active", "charge_current": 16}
    assert at(29.9) == {"state": "active", "charge_current": 16}
    assert at(30) == {"state": "disabled"}  # the end is exclusive
    assert at(90) == {"state": "disabled"}  # a zero-power period is a pause
