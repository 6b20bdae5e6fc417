"""billing/ is pure like rating/: no clock, socket, file or database (read from its source)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPURE = {"socket", "sqlite3", "aiosqlite", "psycopg", "aiohttp", "asyncio", "time", "os",
          "pathlib", "io", "subprocess", "core.clock", "urllib", "http", "random"}  # fmt: skip
CLOCK_CALLS = {"now", "today", "utcnow", "time", "monotonic", "open"}


def _findings(source: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        out += [n for n in names if n in IMPURE or n.split(".")[0] in IMPURE]
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in CLOCK_CALLS:
                out.append(f"call {name}()")
    return out


def test_billing_reads_no_clock_and_does_no_io():
    files = sorted((ROOT / "billing").glob("*.py"))
    assert len(files) >= 5  # it read the package
    found = {f.name: _findings(f.read_text()) for f in files}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_check_catches_a_clock_and_a_socket():
    bad = "import socket\nfrom datetime import date\nx = date.today()\nfrom core.clock import C\n"
    assert sorted(_findings(bad)) == ["call today()", "core.clock", "socket"]
