"""The end-of-run summary a demo user reads: did the car make it, what did it cost, by band,
and what would charging on plug-in have cost instead (rated by the same engine)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, TextIO

import rating
from core.timegrid import SLOT as HALF_HOUR
from devices.base import ChargerState
from flexd.energy.integrators import HalfHourAccumulator
from flexd.report.bands import by_band

if TYPE_CHECKING:
    from flexd.daemon import Daemon


def _pounds(pence: Decimal) -> str:
    return f"£{pence / 100:.2f}"


def naive_readings(
    readings: list[rating.Reading], plug_in: datetime, max_kw: float
) -> list[rating.Reading]:
    """The same day with the car's energy moved to start at plug-in at full power."""
    ev = {r.start: r.kwh for r in readings if r.register == "ev"}
    total = float(sum(ev.values(), Decimal(0)))
    moved = HalfHourAccumulator()
    if total > 0:
        moved.add_span(plug_in, plug_in + timedelta(hours=total / max_kw), max_kw)
    out: list[rating.Reading] = []
    for r in readings:
        if r.register == "import":
            new = (
                r.kwh
                - ev.get(r.start, Decimal(0))
                + Decimal(str(round(moved.kwh.get(r.start, 0.0), 3)))
            )
            out.append(
                rating.Reading(
                    r.meter, r.start, max(Decimal(0), new).quantize(Decimal("0.001")), "import"
                )
            )
        elif r.register == "ev":
            kwh = Decimal(str(round(moved.kwh.get(r.start, 0.0), 3)))
            out.append(rating.Reading(r.meter, r.start, kwh, "ev"))
        else:
            out.append(r)
    return out


async def print_summary(daemon: Daemon, out: TextIO) -> None:
    storage = daemon.storage
    now = daemon.clock.now()
    p = lambda s="": print(s, file=out)  # noqa: E731
    p()
    p("=" * 72)
    p(f"flexd run summary at {now.isoformat()}")
    for sid, site in daemon.sites.items():
        cfg = site.config
        start = now - timedelta(days=2)
        rated = await storage.latest_rated(cfg.meter, start, now + HALF_HOUR)
        p(f"\nsite {sid} (meter {cfg.meter}, tariff {cfg.tariff})")
        for ch in site.chargers():
            ev = ch.config.ev
            st = ch.state
            soc = "unknown" if ch.soc_pct is None else f"{ch.soc_pct:.1f}%"
            p(f"  EV on {ch.id}: now {soc} (source {ch.soc_source}),"
              f" target {ch.preferences.target_soc_pct:.0f}%")  # fmt: skip
            if ch.ready_by is not None:
                at = (
                    "not reached yet"
                    if ch.soc_at_ready_by is None
                    else f"{ch.soc_at_ready_by:.1f}%"
                )
                p(f"  EV SoC at ready-by {ch.ready_by.isoformat()}: {at}")
            dispatches = await storage.dispatches(device_id=ch.id, start=start)
            smart = [d for d in dispatches if d.kind == "smart" and d.status == "completed"]
            boost = [d for d in dispatches if d.kind == "boost"]
            p(f"  dispatches: {len(smart)} SMART completed"
              f" ({sum((d.kwh for d in smart), Decimal(0))} kWh), {len(boost)} BOOST")  # fmt: skip
            if isinstance(st, ChargerState):
                p(f"  charger: {'plugged in' if st.plugged_in else 'unplugged'}, {st.status}")
            _ = ev
        p("  energy and cost by register and band (latest rated versions):")
        total = Decimal(0)
        for (register, band), (kwh, cost) in by_band(rated).items():
            total += cost
            p(f"    {register:<8} {band:<13} {kwh:>9.2f} kWh  {_pounds(cost):>9}")
        p(f"    {'total':<22} {'':>13}{_pounds(total):>9}")
        plug = next((c.plugged_in_at for c in site.chargers() if c.plugged_in_at), None)
        ev_cfg = next((c.config.ev for c in site.chargers() if c.config.ev), None)
        if plug is not None and ev_cfg is not None and rated:
            raw = await storage.readings(cfg.meter, start, now + HALF_HOUR)
            readings = [rating.Reading(r.meter, r.start, r.kwh, r.register) for r in raw]
            tariff = daemon.tariffs[cfg.meter]
            smart_cost = sum((s.cost_p for s in rating.rate(tariff, readings, [], None)
                              if s.register in ("import", "ev")), Decimal(0))  # fmt: skip
            naive = rating.rate(
                tariff, naive_readings(readings, plug, ev_cfg.max_charge_kw), [], None
            )
            naive_cost = sum(
                (s.cost_p for s in naive if s.register in ("import", "ev")), Decimal(0)
            )
            planned = sum((r.cost_p for r in rated if r.register in ("import", "ev")), Decimal(0))
            p(f"  import cost with flexd's plan: {_pounds(planned)};"
              f" charging at full power from plug-in instead: {_pounds(naive_cost)}")  # fmt: skip
            _ = smart_cost
    p(f"\ndatabase: {storage.where}")
    p("rated slots: table rated_slots (every version), readings and dispatches beside them;")
    tool = "sqlite3" if storage.dialect == "sqlite" else "psql"
    p(f"  e.g. {tool} {storage.where} 'SELECT * FROM rated_slots ORDER BY start LIMIT 5'")
    p("=" * 72)
