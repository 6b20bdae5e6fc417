"""The EMHASS half of bench/emhass_reference.py: run by that script with the EMHASS side
venv's python (``/work/emhass-venv/bin/python``), never with the project's.

Reads problems as JSON on stdin (``{"problems": [...], "repeats": R}``), plans each with
EMHASS's own ``Optimization`` object, built once through EMHASS's own config path
(``config_defaults.json`` -> ``build_params`` -> ``get_yaml_parse``) and then reused, the way
EMHASS's ``OptimizationCache`` reuses it between runs, and prints JSON on stdout: per-problem
seconds in ``perform_dayahead_forecast_optim`` (EMHASS's day-ahead optimisation call) and in
its solver stage alone, the objective, the net grid cost of the plan, the solver and versions.

Imports nothing from this repository, so it runs without the project's dependencies.
"""

from __future__ import annotations

import asyncio
import importlib.metadata as md
import json
import logging
import os
import pathlib
import statistics
import sys
import time
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
from emhass import utils
from emhass.optimization import Optimization

LOAD_COST, PROD_PRICE = "unit_load_cost", "unit_prod_price"


def configs(p: dict[str, Any], mip_gap: float | None) -> tuple[dict, dict, dict]:
    """EMHASS's three config dicts for one site: shipped defaults, then the site's values."""
    root = pathlib.Path(utils.__file__).parent
    emhass_conf = {"associations_path": root / "data/associations.csv"}
    log = logging.getLogger("emhass-bench")
    config = asyncio.run(
        utils.build_config(emhass_conf, log, str(root / "data/config_defaults.json"))
    )
    b = p["battery"]
    # flexd's charge_kw/discharge_kw bound AC-side power. In EMHASS (optimization.py) AC
    # discharge p_sto_pos is bounded by battery_discharge_power_max and by eff_dis times it
    # (_add_battery_constraints), so eff_dis x max binds; AC charge -p_sto_neg by
    # battery_charge_power_max (_initialize_decision_variables) and by max / eff_chg, so the
    # max itself binds. Hence max_dis = discharge_kw / eff_dis and max_chg = charge_kw.
    config.update({
        "costfun": "profit",
        "optimization_time_step": p["slot_minutes"],
        "delta_forecast_daily": 1,
        "number_of_deferrable_loads": 0,
        "nominal_power_of_deferrable_loads": [],
        "operating_hours_of_each_deferrable_load": [],
        "set_use_battery": True,
        "set_nocharge_from_grid": not b["grid_charge"],
        "set_nodischarge_to_grid": not b["grid_export"],  # EMHASS's default is true
        "set_total_pv_sell": False,
        "compute_curtailment": True,  # flexd may curtail PV (at 1e-4 p/kWh)
        "inverter_is_hybrid": False,
        "maximum_power_from_grid": p["grid_import_kw"] * 1000.0,
        "maximum_power_to_grid": p["grid_export_kw"] * 1000.0,
        "battery_nominal_energy_capacity": b["capacity_kwh"] * 1000.0,
        "battery_minimum_state_of_charge": b["min_soc_kwh"] / b["capacity_kwh"],
        "battery_maximum_state_of_charge": b["max_soc_kwh"] / b["capacity_kwh"],
        "battery_charge_efficiency": b["charge_efficiency"],
        "battery_discharge_efficiency": b["discharge_efficiency"],
        "battery_charge_power_max": b["charge_kw"] * 1000.0,
        "battery_discharge_power_max": b["discharge_kw"] * 1000.0 / b["discharge_efficiency"],
        # flexd charges 1e-3 p per kWh discharged (optimiser.model.WEAR_P); EMHASS's weight
        # is per kWh of AC discharge too (scale 0.001 * time_step on W).
        "weight_battery_discharge": p["wear_p_per_kwh"],
        "weight_battery_charge": 0.0,
        # flexd: final SoC >= initial, extra energy worth value_p_per_kwh (0 here). EMHASS by
        # default (factor 0) prices a miss on either side of soc_final at the penalty; a
        # positive factor rewards ending above it at factor x the last import price, so a
        # negligible factor gives ">= soc_final, surplus worth ~0".
        "battery_soc_final_reward_factor": 1e-9,
    })  # fmt: skip
    if mip_gap is not None:
        config["lp_solver_mip_rel_gap"] = mip_gap
    params = asyncio.run(utils.build_params(emhass_conf, {"time_zone": "UTC"}, config, log))
    retrieve_hass_conf, optim_conf, plant_conf = utils.get_yaml_parse(params, log)
    return retrieve_hass_conf, optim_conf, plant_conf


def inputs(p: dict[str, Any]) -> tuple[pd.DataFrame, pd.Series, pd.Series, float]:
    n, h = len(p["import_price_p"]), p["slot_minutes"] / 60.0
    idx = pd.date_range(p["start"], periods=n, freq=f"{p['slot_minutes']}min", tz="UTC")
    # Prices stay in p/kWh: EMHASS's objective is currency-agnostic, so it comes out in pence.
    df = pd.DataFrame({LOAD_COST: p["import_price_p"], PROD_PRICE: p["export_price_p"]}, index=idx)
    to_w = 1000.0 / h  # kWh per slot -> mean W over the slot
    pv = pd.Series(np.asarray(p["pv_kwh"]) * to_w, index=idx)
    load = pd.Series(np.asarray(p["load_kwh"]) * to_w, index=idx)
    return df, pv, load, p["battery"]["soc_kwh"] / p["battery"]["capacity_kwh"]


def run(problems: list[dict[str, Any]], mip_gap: float | None, repeats: int) -> dict[str, Any]:
    log = logging.getLogger("emhass-bench")
    rh, oc, pc = configs(problems[0], mip_gap)
    opt = Optimization(rh, oc, pc, LOAD_COST, PROD_PRICE, "profit", {}, log,
                       num_timesteps=len(problems[0]["import_price_p"]))  # fmt: skip
    # Warm: the first call builds and canonicalises the CVXPY problem; later calls only set
    # Parameter values and re-solve (EMHASS's OptimizationCache path).
    df, pv, load, soc = inputs(problems[0])
    t = time.perf_counter()
    opt.perform_dayahead_forecast_optim(df, pv, load, soc_init=soc, soc_final=soc)
    first_call_s = time.perf_counter() - t
    call_s, cpu_s, solve_s, highs_s, objective, net_grid, status = [], [], [], [], [], [], []
    h = problems[0]["slot_minutes"] / 60.0
    for p in problems:
        df, pv, load, soc = inputs(p)
        best = best_cpu = best_solve = best_highs = float("inf")
        for _ in range(repeats):
            stages: dict[str, float] = {}
            t, c = time.perf_counter(), time.process_time()
            res = opt.perform_dayahead_forecast_optim(df, pv, load, soc_init=soc, soc_final=soc,
                                                      stage_times=stages)  # fmt: skip
            best = min(best, time.perf_counter() - t)
            # Process CPU seconds (all threads): less sensitive to other jobs on shared cores.
            best_cpu = min(best_cpu, time.process_time() - c)
            best_solve = min(best_solve, stages.get("optim_solve.solve", float("nan")))
            # HiGHS's own time inside that call, as CVXPY reports it.
            best_highs = min(best_highs, opt.prob.solver_stats.solve_time or float("nan"))
        call_s.append(best)
        cpu_s.append(best_cpu)
        solve_s.append(best_solve)
        highs_s.append(best_highs)
        status.append(str(res["optim_status"].iloc[0]))
        # Maximised: minus (import cost - export revenue + wear) in pence, plus tiny terms.
        objective.append(-float(opt.prob.value))
        imp_w, exp_w = res["P_grid_pos"].to_numpy(), res["P_grid_neg"].to_numpy()
        net_p = np.dot(p["import_price_p"], imp_w) + np.dot(p["export_price_p"], exp_w)
        net_grid.append(float(net_p) * h / 1000.0)
    return {"call_s": call_s, "cpu_s": cpu_s, "solve_s": solve_s, "highs_s": highs_s,
            "objective_p": objective, "net_grid_p": net_grid, "status": sorted(set(status)),
            "mip_rel_gap": opt.optim_conf.get("lp_solver_mip_rel_gap"),
            "first_call_s": first_call_s,
            "median_call_ms": 1e3 * statistics.median(call_s),
            "median_cpu_ms": 1e3 * statistics.median(cpu_s),
            "median_solve_ms": 1e3 * statistics.median(solve_s),
            "median_highs_ms": 1e3 * statistics.median(highs_s),
            "dpp": opt.prob.is_dpp(), "variables": sum(v.size for v in opt.prob.variables()),
            "integer_variables": sum(v.size for v in opt.prob.variables()
                                     if v.attributes["boolean"] or v.attributes["integer"]),
            "constraints": len(opt.prob.constraints)}  # fmt: skip


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # EMHASS logs every solve at INFO
    # HiGHS prints its banner on file descriptor 1: keep stdout for the JSON alone.
    json_fd = os.dup(1)
    os.dup2(2, 1)
    req = json.load(sys.stdin)
    out: dict[str, Any] = {
        "emhass": md.version("emhass"), "cvxpy": cp.__version__, "highspy": md.version("highspy"),
        "python": sys.version.split()[0], "installed_solvers": cp.installed_solvers(),
        # perform_optimization: LP_SOLVER env var, default "HIGHS" -> cp.HIGHS (MILP: the
        # grid-direction and battery-direction binaries D and E are always in the model).
        "solver": "HiGHS via CVXPY (cp.HIGHS), warm_start=True",
    }  # fmt: skip
    for label, gap in req["variants"].items():
        out[label] = run(req["problems"], gap, req.get("repeats", 1))
    os.write(json_fd, json.dumps(out).encode())


if __name__ == "__main__":
    main()
