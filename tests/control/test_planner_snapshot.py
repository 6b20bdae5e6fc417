"""The planner solves a frozen snapshot taken on the event loop, never the live site."""

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import rating
from devices.base import BatteryMode, InverterState
from flexd.config import parse_config
from flexd.control.planner import PlanInput, Planner
from flexd.control.runtime import build_sites

T0 = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)


def _site(tmp_path: Path):
    doc = {"daemon": {"database": "x.sqlite"},
           "sites": [{"id": "home", "meter": "M1", "tariff": "io-flux",
                      "devices": [{"id": "battery", "brand": "givenergy", "max_charge_kw": 2.5}]}]}  # fmt: skip
    cfg = parse_config(doc, tmp_path, env={})
    site = build_sites(cfg.sites)["home"]
    dev = site.devices["battery"]
    dev.state = InverterState(T0, 50.0, 10.0, 0.0, 0.0, 400.0, 400.0, BatteryMode.SELF_USE, 10.0)
    dev.last_ok = T0
    return site, dev


def test_the_solve_reads_only_the_snapshot(tmp_path):
    site, dev = _site(tmp_path)
    planner = Planner(rating.PriceBook(), rating.load_tariff("io-flux"))
    snap = planner.snapshot(site, T0, {}, None)
    assert isinstance(snap, PlanInput) and dataclasses.is_dataclass(snap)
    assert snap.problem.battery is not None and snap.problem.battery.soc_kwh == 5.0
    assert snap.problem.battery.charge_kw == 2.5  # the brand's typed options reach the plan
    # A poller lands mid-solve: the live state changes, and even vanishes.
    dev.state = dataclasses.replace(dev.state, battery_soc_pct=90.0)
    site.devices.clear()
    plan = planner.solve(snap)
    assert plan is not None and plan.battery_soc_kwh is not None
    # The plan starts from the snapshot's 5 kWh, not the live 9 kWh.
    first = plan.battery_soc_kwh[0]
    assert abs(first - (5.0 + plan.battery_charge_kwh[0] * 0.95
                        - plan.battery_discharge_kwh[0] / 0.95)) < 1e-6  # fmt: skip
    with __import__("pytest").raises(dataclasses.FrozenInstanceError):
        snap.missing = 0  # type: ignore[misc]
