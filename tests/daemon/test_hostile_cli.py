"""Hostile configs and files through the real CLI: exit 2 within seconds, one stderr line that
names the file (and line or key path) and the reason; never a hang or a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = (REPO / "config" / "flexd.toml").read_text()


def flexd(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "flexd", *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, timeout=30)  # fmt: skip
    return r.returncode, r.stderr.strip().splitlines()


def _config(tmp_path, old, new):
    assert old in DEMO
    p = tmp_path / "flexd.toml"
    p.write_text(DEMO.replace(old, new).replace('"../var/flexd.sqlite"', '"flexd.sqlite"', 1)
                 if "database" not in old else DEMO.replace(old, new))  # fmt: skip
    return p


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        ('tariff = "io-go"', 'tariff = "no-such-tariff"', "sites[0].tariff: "),
        ('tariff = "io-go"', 'tariff = "/etc/hostname.toml"', "sites[0].tariff: "),
        ("cycle_seconds = 300", "cycle_seconds = nan", "daemon.cycle_seconds: must be a finite number"),
        ("cycle_seconds = 300", "cycle_second = 300", "daemon.cycle_second: unknown key"),
        ("poll_seconds = 30", "pol_seconds = 30", "sites[0].devices[0].pol_seconds: unknown key"),
        ("port = 8080", "port = 99999", "api.port: must be within 0..65535"),
        ('# tls_cert = "cert.pem"', 'tls_cert = "nope.pem"\ntls_key = "nope.pem"', "api.tls_cert: "),
        ("# planner_threads = 0", "planner_threads = 100000\n#", "daemon.planner_threads: must be"),
    ],
)  # fmt: skip
def test_bad_config_exits_2_naming_the_key(tmp_path, old, new, expect):
    cfg = _config(tmp_path, old, new)
    code, err = flexd("run", "--config", cfg, "--simulate", "--hours", "0.01", cwd=tmp_path)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"flexd run: {cfg}: ") and expect in err[0]


def test_an_api_port_in_use_exits_2_and_does_not_hang(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = _config(tmp_path, "port = 8080", f"port = {port}")
        code, err = flexd("run", "--config", cfg, "--simulate", "--hours", "0.01", cwd=tmp_path)
    assert code == 2 and len([e for e in err if not e.startswith("{")]) == 1
    assert "start-up failed: OSError" in err[-1] and "address already in use" in err[-1]


def test_a_file_that_is_not_a_database_is_refused_by_name(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(bytes(range(256)) * 8)
    cfg = _config(tmp_path, 'database = "../var/flexd.sqlite"', f'database = "{junk}"')
    code, err = flexd("run", "--config", cfg, "--simulate", "--hours", "0.01", cwd=tmp_path)
    assert code == 2 and err == [f"flexd: database {junk}: DatabaseError: file is not a database"]
    assert junk.read_bytes() == bytes(range(256)) * 8  # and left as it was


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


OK = b"meter,start,kwh\nM1,2026-01-01T00:00:00Z,0.5\n"


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (lambda t: ["rate", "--tariff", "io-go", "--readings",
                    _write(t, "big.csv", b"meter,start,kwh\nM1,2026-01-01T00:00:00Z," + b"9" * (64 << 20) + b"\n")],
         "big.csv:2: not CSV: field larger than field limit"),
        (lambda t: ["rate", "--tariff", "io-go", "--readings",
                    _write(t, "latin1.csv", b"meter,start,kwh\nM\xe9,2026-01-01T00:00:00Z,0.5\n")],
         "latin1.csv: not UTF-8 text"),
        (lambda t: ["rate", "--tariff", "agile", "--readings", _write(t, "r.csv", OK), "--prices",
                    _write(t, "deep.json", b"[" * 100_000 + b"]" * 100_000)],
         "deep.json: not JSON we accept (nested too deep)"),
        (lambda t: ["plan", "--problem", _write(t, "deep.json", b"[" * 100_000 + b"]" * 100_000)],
         "deep.json: not JSON we accept (nested too deep)"),
        (lambda t: ["plan", "--problem", _write(t, "bin.json", b"\xff\xfe{}")], "bin.json: not UTF-8 text"),
    ],
)  # fmt: skip
def test_hostile_files_exit_2_with_one_line(tmp_path, args, expect):
    argv = args(tmp_path)
    out = tmp_path / "out.csv"
    code, err = flexd(*argv, "--out", out, cwd=tmp_path)
    assert code == 2 and len(err) == 1 and expect in err[0], err
    assert not out.exists()  # no partial output
