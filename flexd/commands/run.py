"""``flexd run --config FILE [--simulate] [--speed N] [--hours H]``: the daemon."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the daemon on a config file")
    p.add_argument("--config", type=Path, default=Path("config/flexd.toml"))
    p.add_argument(
        "--simulate",
        action="store_true",
        help="simulated time, with every simulate=true device's simulator in-process",
    )
    p.add_argument("--speed", type=float, default=None, help="simulated seconds per real second")
    p.add_argument("--hours", type=float, default=None, help="simulated hours to run, then stop")
    p.add_argument("--database", default=None,
                   help="override [daemon].database: a SQLite file or a postgresql:// URL")
    p.add_argument("--api-port", type=int, default=None,
                   help="override [api].port (0: any free port; two instances on one host)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from flexd.bootstrap import run_from_file

    return run_from_file(
        "run",
        args.config,
        simulate=args.simulate,
        speed=args.speed,
        hours=args.hours,
        database=args.database,
        api_port=args.api_port,
    )
