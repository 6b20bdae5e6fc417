"""`flexd rate` end to end through the real CLI: the contract, and every bad-input case."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rating import RATED_COLUMNS

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "config" / "samples"


def flexd(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "flexd", *args], capture_output=True, text=True, cwd=cwd)


def test_rate_samples_writes_the_contract(tmp_path):
    out = tmp_path / "rated.csv"
    r = flexd("rate", "--tariff", "io-go", "--readings", str(SAMPLES / "readings.csv"),
              "--dispatches", str(SAMPLES / "dispatches.csv"), "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open()))
    assert tuple(rows[0]) == RATED_COLUMNS
    assert {row["band"] for row in rows} == {"off-peak", "smart-charge", "peak", "standing"}
    keys = [(row["meter"], row["start"]) for row in rows]
    assert keys == sorted(keys)
    assert sum(1 for row in rows if row["register"] == "standing") == 2


def test_rate_agile_json(tmp_path):
    out = tmp_path / "rated.json"
    r = flexd("rate", "--tariff", "agile", "--readings", str(SAMPLES / "readings.csv"),
              "--prices", str(SAMPLES / "agile-prices.json"), "--out", str(out), "--format", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc[0].keys() == set(RATED_COLUMNS) and {d["band"] for d in doc} == {"agile", "standing"}


READINGS_HEADER = "meter,start,kwh,register\n"


@pytest.mark.parametrize(
    ("readings", "dispatches", "needle"),
    [
        ("m,2026-01-15 10:00,1.0,import\n", None, "readings.csv:2: start: instant"),
        ("m,2026-01-15T10:00:00,1.0,import\n", None, "has no offset"),
        ("m,2026-01-15T10:15:00Z,1.0,import\n", None, "not on a half-hour boundary"),
        ("m,2026-01-15T10:00:00Z,-0.1,import\n", None, "negative"),
        ("m,2026-01-15T10:00:00Z,abc,import\n", None, "not a number"),
        ("m,2026-01-15T10:00:00Z,NaN,import\n", None, "not a number"),
        ("m,2026-01-15T10:00:00Z,1,gas\n", None, "unknown register"),
        ("m,2026-01-15T10:00:00Z,1,import\nm,2026-01-15T10:00:00+00:00,2,import\n", None,
         "readings.csv:3: duplicate"),
        ("m,2026-01-15T10:00:00Z,1,import\n", "m,2026-01-15T10:00:00Z,2026-01-15T11:00:00Z,turbo\n",
         "dispatches.csv:2: kind: unknown kind"),
        ("m,2026-01-15T10:00:00Z,1,import\n", "m,2026-01-15T11:00:00Z,2026-01-15T11:00:00Z,smart\n",
         "end must be after start"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, readings, dispatches, needle):
    (tmp_path / "readings.csv").write_text(READINGS_HEADER + readings)
    args = ["rate", "--tariff", "io-go", "--readings", "readings.csv", "--out", "rated.csv"]
    if dispatches is not None:
        (tmp_path / "dispatches.csv").write_text("meter,start,end,kind\n" + dispatches)
        args += ["--dispatches", "dispatches.csv"]
    r = flexd(*args, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert not (tmp_path / "rated.csv").exists()


def test_missing_agile_price_exits_2(tmp_path):
    # (A half-hour the price file lacks: in the past, as every accepted reading now is.)
    (tmp_path / "readings.csv").write_text(READINGS_HEADER + "m,2020-01-15T10:00:00Z,1,import\n")
    r = flexd("rate", "--tariff", "agile", "--readings", "readings.csv", "--prices",
              str(SAMPLES / "agile-prices.json"), "--out", "rated.csv", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "no Agile price for 2020-01-15T10:00:00+00:00" in r.stderr
    assert not (tmp_path / "rated.csv").exists()


def test_bad_input_keeps_an_existing_output_intact(tmp_path):
    out = tmp_path / "rated.csv"
    out.write_text("previous run\n")
    (tmp_path / "readings.csv").write_text(READINGS_HEADER + "m,bad,1,import\n")
    r = flexd("rate", "--tariff", "io-go", "--readings", "readings.csv", "--out", "rated.csv", cwd=tmp_path)
    assert r.returncode == 2 and out.read_text() == "previous run\n"


def test_unknown_tariff_exits_2(tmp_path):
    r = flexd("rate", "--tariff", "no-such", "--readings", str(SAMPLES / "readings.csv"), "--out", "x.csv", cwd=tmp_path)
    assert r.returncode == 2 and "no-such.toml" in r.stderr


def test_real_messy_meter_file_reports_the_duplicate(shared_data, tmp_path):
    """Dibemas MAC002163.csv: raw LCL, unsorted, with duplicate timestamps and a Null."""
    src = shared_data / "Dibemas_EnergyPredictionClass" / "MAC002163.csv"
    rows = list(csv.reader(src.open()))[1:]
    out = ["meter,start,kwh"]
    for r in rows:
        stamp = r[2].strip()[:19].replace(" ", "T") + "Z"
        value = r[3].strip()
        if value == "Null":
            continue
        out.append(f"MAC002163,{stamp},{value}")
    (tmp_path / "readings.csv").write_text("\n".join(out) + "\n")
    r = flexd("rate", "--tariff", "io-go", "--readings", "readings.csv", "--out", "rated.csv", cwd=tmp_path)
    assert r.returncode == 2 and "duplicate (meter, start, register) MAC002163" in r.stderr
    assert "readings.csv:" in r.stderr
