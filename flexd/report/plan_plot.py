"""The picture a user looks at to trust a plan: prices, energy per slot, SoC lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optimiser import Problem, Schedule


def plot_schedule(problem: Problem, schedule: Schedule, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = problem.n
    x = np.arange(n)
    labels = [problem.slot_start(i).strftime("%H:%M") for i in range(n)]
    fig, (ax_p, ax_e, ax_s) = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    ax_p.bar(x, problem.import_price_p, color="#d95f02", alpha=0.8, label="import p/kWh")
    ax_p.step(x, problem.export_price_p, where="mid", color="#1b9e77", label="export p/kWh")
    ax_p.set_ylabel("price (p/kWh)")
    ax_p.legend(loc="upper right")
    ax_p.set_title(
        f"flexd plan from {problem.start.isoformat()}: objective {schedule.objective_p:.1f} p"
    )
    w = 0.4
    ax_e.bar(x - w / 2, schedule.grid_import_kwh, w, color="#7570b3", label="grid import")
    ax_e.bar(x - w / 2, -schedule.grid_export_kwh, w, color="#66a61e", label="grid export")
    ax_e.bar(x + w / 2, schedule.battery_charge_kwh, w, color="#e7298a", label="battery charge")
    ax_e.bar(
        x + w / 2, -schedule.battery_discharge_kwh, w, color="#e6ab02", label="battery discharge"
    )
    bottom = np.zeros(n)
    for ev in schedule.evs:
        ax_e.bar(x, ev.charge_kwh, 0.15, bottom=bottom, color="#a6761d", label=f"EV {ev.id}")
        bottom += ev.charge_kwh
    ax_e.axhline(0, color="black", lw=0.5)
    ax_e.set_ylabel("kWh per slot")
    ax_e.legend(loc="upper right", fontsize=8, ncol=3)
    if problem.battery is not None:
        ax_s.plot(x, schedule.battery_soc_kwh, color="#e7298a", label="battery SoC")
        ax_s.axhline(problem.battery.min_soc_kwh, color="#e7298a", ls=":", lw=0.8, label="reserve")
    for ev, spec in zip(schedule.evs, problem.evs, strict=True):
        ax_s.plot(x, ev.soc_kwh, color="#a6761d", label=f"EV {ev.id} SoC")
        k = problem.ready_index(spec)
        ax_s.axvline(k - 0.5, color="#a6761d", ls="--", lw=0.8)
        ax_s.axhline(
            spec.target_soc_kwh, color="#a6761d", ls=":", lw=0.8, label=f"EV {ev.id} target"
        )
    ax_s.set_ylabel("kWh")
    ax_s.legend(loc="upper left", fontsize=8)
    step = max(1, n // 24)
    ax_s.set_xticks(x[::step], labels[::step], rotation=45)
    ax_s.set_xlabel("slot start (UTC)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
