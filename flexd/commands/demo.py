"""``flexd demo``: the demo site on simulated time, with a summary at the end."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "flexd.toml"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run the demo site for a simulated day and summarise it")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--speed", type=float, default=None, help="simulated seconds per real second")
    p.add_argument("--hours", type=float, default=None, help="simulated hours (default 24)")
    p.add_argument("--database", default=None,
                   help="a SQLite file or a postgresql:// URL (default: a fresh file under "
                        "./var/)")  # fmt: skip
    p.add_argument("--api-port", type=int, default=0, help="API port (default: any free port)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from flexd.bootstrap import run_from_file

    return run_from_file(
        "demo",
        args.config,
        simulate=True,
        speed=args.speed,
        hours=args.hours,
        database=args.database or Path("var") / "flexd-demo.sqlite",
        fresh_database=args.database is None,
        api_port=args.api_port,
        summary=True,
        announce_page=True,
    )
