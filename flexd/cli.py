"""The ``flexd`` command line: dispatches to one module per subcommand in flexd.commands.

Exit codes shared by every subcommand: 0 success, 2 bad input (one line on stderr naming the
file or field and the reason), 1 any other failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Order is the order in --help. Each name is a module in flexd.commands.
COMMANDS = ("run", "demo", "sites", "rate", "plan", "bill", "dd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flexd",
        description="Smart-device control and half-hourly rating for IO Go and IO Flux.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"flexd.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
