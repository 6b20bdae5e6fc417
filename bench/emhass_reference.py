"""48-slot battery plans: flexd's planner against EMHASS, measured in the same run (issue 15).

    .venv/bin/python bench/emhass_reference.py [--solves 50] [--repeats 1]
        [--emhass-python /work/emhass-venv/bin/python] [--json bench/results/emhass.json]

EMHASS is not a project dependency: it lives in a side venv (``python3 -m venv
/work/emhass-venv && /work/emhass-venv/bin/pip install emhass==0.18.7``) and runs in a
subprocess, ``bench/emhass_side.py``, which gets the problems as JSON. Both sides plan the
same ``problem("battery", 48, seed)`` instances from bench/optimiser.py (real Agile import
and Agile Outgoing export prices, random load and PV, a 9.5 kWh battery with a random SoC).

Timing, both sides warm: flexd's ``Planner`` has solved one problem before the clock (numba
kernel loaded); EMHASS's ``Optimization`` object is built once and has solved one problem
(CVXPY problem built and canonicalised), then each problem is one
``perform_dayahead_forecast_optim`` call on the same object, as EMHASS's own
``OptimizationCache`` does between runs. Per problem the best of ``--repeats`` calls is
kept on both sides, then the median over problems is reported, in wall time and in process
CPU time (the latter less disturbed by other jobs on shared cores). EMHASS's "solve" column is
its own ``optim_solve.solve`` stage timer (the CVXPY ``solve`` call alone, without setting
parameters or building the result DataFrame); the headline ratio uses the whole call.

The mapping (bench/emhass_side.py, ``configs``): costfun "profit" with import price as
``unit_load_cost`` and export price as ``unit_prod_price`` (p/kWh, so EMHASS's objective is in
pence); load and PV as mean W per slot; battery capacity, SoC bounds (0.95..9.5 kWh),
efficiencies (0.95 each way), AC charge and discharge limits (3 kW, through EMHASS's
efficiency factors on its power limits), grid limits (15 kW import, 5 kW export), grid
charging and battery export allowed (EMHASS's ``set_nodischarge_to_grid`` defaults to true:
set false), curtailment on, 1e-3 p/kWh discharge wear as ``weight_battery_discharge``, no
deferrable loads, no EV. What still differs:

- Terminal SoC: flexd requires final SoC >= initial (surplus worth 0). EMHASS softly pins
  it to ``soc_final`` (= initial here) with a large penalty for ending below; ending above
  is rewarded at ``battery_soc_final_reward_factor`` x the last import price, set to 1e-9,
  i.e. ">= initial, surplus worth ~0".
- Binaries: EMHASS always carries grid-direction (D) and battery-direction (E) binaries and
  two SoC-recovery binaries per slot (inactive when the SoC starts in bounds), so every
  solve is a HiGHS MILP; flexd's planner solves this shape exactly without binaries (its
  exact path; HiGHS + binaries is its fallback). Here export price < import price in every
  slot, so neither direction binary can pay to break.
- MIP gap: EMHASS ships ``lp_solver_mip_rel_gap`` 0.01 (stop within 1 % of the optimum);
  the run also measures it at 0, which is what the objective check uses (EMHASS then passes
  no gap, so HiGHS's own default applies: mip_rel_gap 1e-4, mip_abs_gap 1e-6).
- flexd prices curtailment at 1e-4 p/kWh and unserved load at 10,000 p/kWh; EMHASS has a
  curtailment tie-break of up to 1e-7 per W per slot (2e-4 p per kWh in 30-minute slots) and
  no unserved-load variable (15 kW import covers any load here, so unserved is never used).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as bench/emhass_reference.py: put the repository, not bench/, first on the path.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import statistics
import subprocess
import time
from typing import Any

from bench.optimiser import machine, problem
from optimiser import Planner, Problem
from optimiser.model import WEAR_P

ROOT = Path(__file__).resolve().parents[1]


def as_json(p: Problem) -> dict[str, Any]:
    b = p.battery
    assert b is not None and not p.evs
    return {
        "start": p.start.isoformat(), "slot_minutes": p.slot_minutes,
        "import_price_p": p.import_price_p.tolist(), "export_price_p": p.export_price_p.tolist(),
        "load_kwh": p.load_kwh.tolist(), "pv_kwh": p.pv_kwh.tolist(),
        "grid_import_kw": p.grid.import_kw, "grid_export_kw": p.grid.export_kw,
        "wear_p_per_kwh": WEAR_P,
        "battery": {
            "capacity_kwh": b.capacity_kwh, "soc_kwh": b.soc_kwh, "min_soc_kwh": b.min_soc_kwh,
            "max_soc_kwh": b.max_soc, "charge_kw": b.charge_kw, "discharge_kw": b.discharge_kw,
            "charge_efficiency": b.charge_efficiency,
            "discharge_efficiency": b.discharge_efficiency,
            "grid_charge": b.grid_charge, "grid_export": b.grid_export,
        },
    }  # fmt: skip


def emhass(python: str, probs: list[Problem], repeats: int) -> dict[str, Any]:
    req = {"problems": [as_json(p) for p in probs], "repeats": repeats,
           "variants": {"default_gap": None, "gap_0": 0.0}}  # fmt: skip
    run = subprocess.run([python, str(ROOT / "bench/emhass_side.py")], input=json.dumps(req),
                         capture_output=True, text=True, check=False)  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"EMHASS side failed ({python}):\n{run.stderr[-4000:]}")
    out: dict[str, Any] = json.loads(run.stdout)
    return out


def flexd(probs: list[Problem], repeats: int) -> dict[str, Any]:
    planner = Planner()
    planner.solve(problem("battery", 48, 10**6))  # load the numba kernel before the clock
    times, cpu, objective, net_grid = [], [], [], []
    for p in probs:
        best = best_cpu = float("inf")
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            s = planner.solve(p)
            best = min(best, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
        times.append(best)
        cpu.append(best_cpu)
        objective.append(s.objective_p)
        net_grid.append(s.costs.net_grid_p)
    return {"call_s": times, "cpu_s": cpu, "objective_p": objective, "net_grid_p": net_grid,
            "paths": dict(planner.paths), "median_ms": 1e3 * statistics.median(times),
            "median_cpu_ms": 1e3 * statistics.median(cpu)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--solves", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=1, help="calls per problem, best kept")
    ap.add_argument("--emhass-python", default="/work/emhass-venv/bin/python")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    probs = [problem("battery", 48, s) for s in range(args.solves)]
    em = emhass(args.emhass_python, probs, args.repeats)
    fx = flexd(probs, args.repeats)
    print(f"EMHASS {em['emhass']} (CVXPY {em['cvxpy']}, highspy {em['highspy']}), solver: "
          f"{em['solver']}; flexd planner paths {fx['paths']}")  # fmt: skip
    print(f"{args.solves} 48-slot battery plans, median ms per plan (best of {args.repeats}):")
    print(f"  flexd Planner().solve: {fx['median_ms']:.4f} (process CPU {fx['median_cpu_ms']:.4f})")
    ratios: dict[str, dict[str, float]] = {}
    for label in ("default_gap", "gap_0"):
        v = em[label]
        call = v["median_call_ms"] / fx["median_ms"]
        solve = v["median_solve_ms"] / fx["median_ms"]
        highs = v["median_highs_ms"] / fx["median_ms"]
        cpu = v["median_cpu_ms"] / fx["median_cpu_ms"]
        ratios[label] = {"call": call, "call_cpu": cpu, "solve_stage": solve, "highs_alone": highs}
        gaps = [a - b for a, b in zip(v["objective_p"], fx["objective_p"], strict=True)]
        print(f"  EMHASS, mip_rel_gap {v['mip_rel_gap']}: perform_dayahead_forecast_optim "
              f"{v['median_call_ms']:.2f} ({call:,.0f}x flexd; process CPU "
              f"{v['median_cpu_ms']:.2f}, {cpu:,.0f}x); its solve stage (CVXPY + HiGHS) "
              f"{v['median_solve_ms']:.2f} ({solve:,.0f}x); HiGHS alone {v['median_highs_ms']:.2f} "
              f"({highs:,.0f}x); first call (builds the CVXPY problem) "
              f"{1e3 * v['first_call_s']:.0f}; status {v['status']}")  # fmt: skip
        med = statistics.median(gaps)
        print(f"    EMHASS objective - flexd objective_p: median {med:+.6f} p, "
              f"min {min(gaps):+.6f} p, max {max(gaps):+.6f} p, {len(gaps)} problems")  # fmt: skip
    print("objective check (gap 0), first problems: seed, flexd objective_p, EMHASS objective, "
          "flexd net grid p, EMHASS plan's net grid p")  # fmt: skip
    for i in range(min(5, args.solves)):
        v = em["gap_0"]
        print(f"  {i}: {fx['objective_p'][i]:.6f} {v['objective_p'][i]:.6f} "
              f"{fx['net_grid_p'][i]:.6f} {v['net_grid_p'][i]:.6f}")  # fmt: skip
    print(f"machine: {machine()}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "solves": args.solves,
                                         "repeats": args.repeats, "flexd": fx, "emhass": em,
                                         "ratio_median": ratios}, indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
