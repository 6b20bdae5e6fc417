"""``flexd plan``: solve one scheduling problem (problem.json -> schedule.json)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from optimiser import SOLVERS, ProblemError, parse_problem, solve


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="solve a charging/battery schedule for one site")
    p.add_argument("--problem", required=True, type=Path, help="problem.json")
    p.add_argument("--out", required=True, type=Path, help="schedule.json")
    p.add_argument("--plot", type=Path, help="write a PNG of the plan")
    p.add_argument("--export-lp", type=Path, help="write the model as an .lp file (PuLP)")
    p.add_argument("--solver", choices=SOLVERS, default="auto")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        doc = json.loads(args.problem.read_text())
    except OSError as exc:
        print(f"flexd plan: {args.problem}: {exc.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"flexd plan: {args.problem}:{exc.lineno}: not JSON ({exc.msg})", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"flexd plan: {args.problem}: not UTF-8 text", file=sys.stderr)
        return 2
    except RecursionError:
        print(f"flexd plan: {args.problem}: not JSON we accept (nested too deep)", file=sys.stderr)
        return 2
    try:
        problem = parse_problem(doc)
    except ProblemError as exc:
        print(f"flexd plan: {args.problem}: {exc}", file=sys.stderr)
        return 2
    schedule = solve(problem, args.solver)
    args.out.write_text(json.dumps(schedule.to_json(), indent=1) + "\n")
    if args.export_lp:
        from optimiser.pulp_reference import export_lp

        export_lp(problem, args.export_lp)
    if args.plot:
        from flexd.report.plan_plot import plot_schedule

        plot_schedule(problem, schedule, args.plot)
    evs = ", ".join(f"{e.id} short {e.shortfall_kwh:.2f} kWh" for e in schedule.evs)
    print(
        f"{schedule.status}: {schedule.objective_p:.2f} p{'; ' + evs if evs else ''}",
        file=sys.stderr,
    )
    return 0
