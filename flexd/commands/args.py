"""What the billing subcommands share: argparse errors as one line, and billing's input errors."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


def one_line_errors(parser: argparse.ArgumentParser, prog: str) -> None:
    """Bad or missing flags exit 2 with one line on stderr (argparse's default prints the
    usage too), as every bad input does."""

    def error(message: str) -> NoReturn:
        print(f"{prog}: {message}", file=sys.stderr)
        sys.exit(2)

    parser.error = error  # type: ignore[method-assign]
