"""A charger's car's state of charge, resolved through :func:`devices.ev_soc.choose_soc`."""

from __future__ import annotations

from datetime import datetime

from devices.base import ChargerState
from devices.ev_soc import SocReading, UserEntry, choose_soc
from flexd.control.runtime import DeviceRuntime


def resolve_ev_soc(dev: DeviceRuntime, at: datetime) -> None:
    """Best SoC for a charger's car: the charger's own reading, else the car's cloud API, else
    the user's entered SoC plus the energy delivered since plug-in times the charger
    efficiency. Sets ``dev.soc_pct``, ``soc_source`` and ``soc_measured_at``."""
    st = dev.state
    if not isinstance(st, ChargerState):
        return
    charger = None
    if st.soc_pct is not None and 0.0 <= st.soc_pct <= 100.0:
        charger = SocReading(st.soc_pct, st.soc_measured_at or st.measured_at)
    user = None
    ev = dev.config.ev
    if ev is not None:
        delivered = max(0.0, st.energy_register_kwh - dev.session_start_register_kwh)
        user = UserEntry(
            ev.initial_soc_pct, delivered, st.measured_at, ev.capacity_kwh, ev.efficiency
        )
    est = choose_soc(at, charger=charger, vehicle=dev.vehicle_soc, user=user)
    dev.soc_pct = est.soc_pct
    dev.soc_source = est.source.value
    dev.soc_measured_at = est.measured_at
