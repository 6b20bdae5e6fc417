"""Implausible readings in flexd rate: exit 2 naming file:line, or with --rejects the refused
rows written with their reason and the rest rated. Real glitches from a real smart meter."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "BenjaminWatts_bellevercarbon"
HEADER = "meter,start,kwh,register\n"


def flexd(*args, cwd):
    return subprocess.run([sys.executable, "-m", "flexd", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_a_glitch_exits_2_naming_file_and_line(tmp_path):
    (tmp_path / "r.csv").write_text(HEADER + "m,2026-01-15T00:00:00Z,0.5,import\n"
                                    "m,2026-01-15T00:30:00Z,65.534,import\n")  # fmt: skip
    r = flexd("rate", "--tariff", "io-go", "--readings", "r.csv", "--out", "o.csv", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == ("flexd rate: r.csv:3: kwh: kwh 65.534 is above the plausible "
                                "maximum of 30 per half-hour")  # fmt: skip
    assert not (tmp_path / "o.csv").exists()


def test_max_kwh_flag_and_future_readings(tmp_path):
    (tmp_path / "r.csv").write_text(HEADER + "m,2026-01-15T00:00:00Z,12,import\n")
    r = flexd("rate", "--tariff", "io-go", "--readings", "r.csv", "--out", "o.csv",
              "--max-kwh", "10", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "maximum of 10 per half-hour" in r.stderr
    (tmp_path / "r.csv").write_text(HEADER + "m,2099-01-15T00:00:00Z,1,import\n")
    r = flexd("rate", "--tariff", "io-go", "--readings", "r.csv", "--out", "o.csv", cwd=tmp_path)
    assert r.returncode == 2 and "after the current half-hour" in r.stderr


def test_rejects_file_takes_the_bad_rows_and_the_rest_are_rated(tmp_path):
    (tmp_path / "r.csv").write_text(HEADER + "m,2026-01-15T00:00:00Z,0.5,import\n"
                                    "m,2026-01-15T00:30:00Z,65.534,import\n"
                                    "m,2026-01-15T01:00:00Z,abc,import\n"
                                    "m,2026-01-15T01:30:00Z,0.25,import\n")  # fmt: skip
    r = flexd("rate", "--tariff", "io-go", "--readings", "r.csv", "--out", "o.csv",
              "--rejects", "rejects.csv", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    rejects = list(csv.DictReader((tmp_path / "rejects.csv").open()))
    assert [(x["line"], x["kwh"], x["field"]) for x in rejects] == [("3", "65.534", "kwh"),
                                                                   ("4", "abc", "kwh")]  # fmt: skip
    rated = [x for x in csv.DictReader((tmp_path / "o.csv").open()) if x["register"] == "import"]
    assert [x["start"] for x in rated] == ["2026-01-15T00:00:00Z", "2026-01-15T01:30:00Z"]


@pytest.mark.skipif(not (SHARED / "smart_meter.csv").exists(), reason="../shared is absent")
def test_a_real_meters_glitches_are_refused_not_billed(tmp_path):
    # One home's smart-meter export holds 16-bit glitches (65.534 kWh in a half-hour); billed,
    # they were £312 of a £1,296 year. Convert it to readings.csv and rate it.
    src = list(csv.DictReader((SHARED / "smart_meter.csv").open()))
    with (tmp_path / "r.csv").open("w") as fh:
        fh.write(HEADER)
        for row in src:
            fh.write(f"home,{row['dateTime'].replace('.000Z', 'Z')},{row['kWh']},import\n")
    glitches = [row for row in src if float(row["kWh"]) > 30]
    assert glitches  # the file still holds them
    r = flexd("rate", "--tariff", "io-go", "--readings", "r.csv", "--out", "o.csv",
              "--rejects", "rejects.csv", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    rejects = list(csv.DictReader((tmp_path / "rejects.csv").open()))
    assert len(rejects) == len(glitches)
    assert all("above the plausible maximum" in x["reason"] for x in rejects)
    rated = [x for x in csv.DictReader((tmp_path / "o.csv").open()) if x["register"] == "import"]
    assert len(rated) == len(src) - len(glitches)
    assert max(float(x["kwh"]) for x in rated) <= 30
