"""``flexd sites import FILE`` and ``flexd sites list``: a fleet's sites in PostgreSQL.

The database is ``--database`` or the ``[daemon] database`` of ``--config`` (its password from
the config's ``database_password_env``/``_file``). Exit 0 on success, 2 on a bad file, flag or
database (one line on stderr), as every subcommand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from flexd.commands.args import one_line_errors


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sites", help="a fleet's sites in PostgreSQL: import, list")
    one_line_errors(p, "flexd sites")
    ops = p.add_subparsers(dest="op", required=True, metavar="OP")
    imp = ops.add_parser("import", help="add or update the [[sites]] of a sites.toml")
    imp.add_argument("file", type=Path, help="sites.toml: [[sites]] tables as in flexd.toml")
    lst = ops.add_parser("list", help="every site with its owner, epoch and lease (JSON)")
    for q in (imp, lst):
        one_line_errors(q, f"flexd sites {q.prog.split()[-1]}")
        q.add_argument("--config", type=Path, default=None, help="flexd.toml for the database")
        q.add_argument("--database", default=None, help="a postgresql:// URL")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def _fail(message: str) -> int:
    print(f"flexd sites: {message}".splitlines()[0], file=sys.stderr)
    return 2


async def _run(args: argparse.Namespace) -> int:
    from flexd.config import ConfigError, load_config
    from flexd.config.parse import database_target
    from flexd.fleet.catalogue import import_sites, read_sites_file
    from flexd.fleet.leases import fleet_view
    from flexd.storage import Storage, is_url
    from flexd.storage.driver import redact

    password = None
    try:
        if args.database is not None:
            target = database_target(args.database, Path.cwd())
        elif args.config is not None:
            cfg = load_config(args.config)
            target, password = cfg.database, cfg.database_password
        else:
            return _fail("--database or --config is required")
        docs = read_sites_file(args.file) if args.op == "import" else []
    except ConfigError as exc:
        return _fail(str(exc))
    if not is_url(target):
        return _fail("--database: a fleet's sites live in PostgreSQL (a postgresql:// URL)")
    try:
        storage = await Storage.open(target, password)
    except Exception as exc:  # the one line an operator needs, never a traceback
        return _fail(f"database {redact(str(target))}: {type(exc).__name__}: {exc}")
    try:
        if args.op == "import":
            try:
                got = await import_sites(storage, docs)
            except ConfigError as exc:
                return _fail(f"{args.file}: {exc}")
            print(json.dumps({"added": got.added, "updated": got.updated,
                              "unchanged": got.unchanged}))  # fmt: skip
            return 0
        _instances, leases = await fleet_view(storage)
        print(json.dumps({"sites": [
            {"id": s.id, "owner": s.owner, "epoch": s.epoch,
             "lease_expires": None if s.lease_until is None else s.lease_until.isoformat()}
            for s in leases
        ]}, indent=1))  # fmt: skip
        return 0
    finally:
        await storage.close()
