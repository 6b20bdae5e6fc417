"""`flexd plan` through the real CLI: the schedule.json contract, plot, LP export, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"


def flexd(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "flexd", *args], capture_output=True, text=True, cwd=cwd)


def test_plan_sample_writes_schedule_plot_and_lp(tmp_path):
    r = flexd("plan", "--problem", str(SAMPLES / "problem-capped.json"), "--out", "s.json",
              "--plot", "p.png", "--export-lp", "m.lp", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "s.json").read_text())
    for key in ("status", "objective_p", "grid_import_kwh", "grid_export_kwh", "battery_charge_kwh",
                "battery_discharge_kwh", "battery_soc_kwh"):  # fmt: skip
        assert key in doc
    ev = doc["evs"][0]
    assert {"charge_kwh", "soc_kwh", "shortfall_kwh", "dispatches"} <= ev.keys()
    assert sum(1 for x in ev["charge_kwh"] if x > 1e-6) <= 12
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert "Minimize" in (tmp_path / "m.lp").read_text()


def _bad(tmp_path, mutate):
    doc = json.loads((SAMPLES / "problem.json").read_text())
    mutate(doc)
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    return flexd("plan", "--problem", "bad.json", "--out", "s.json", cwd=tmp_path)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["load_kwh"].pop(), "load_kwh"),
        (lambda d: d["battery"].__setitem__("capacity_kwh", -1), "battery.capacity_kwh"),
        (lambda d: d["battery"].__setitem__("soc_kwh", 20), "battery.soc_kwh"),
        (lambda d: d["evs"][0].__setitem__("ready_by", "2026-01-20T07:00:00Z"), "evs[0].ready_by"),
        (lambda d: d["evs"][0].__setitem__("ready_by", "2026-01-16T07:00:00"), "evs[0].ready_by"),
        (lambda d: d["evs"][0]["plugged_in"].append(True), "evs[0].plugged_in"),
        (lambda d: d.__setitem__("slot_minutes", 0), "slot_minutes"),
        (lambda d: d["import_price_p"].__setitem__(3, "x"), "import_price_p[3]"),
        (lambda d: d["evs"][0].__setitem__("efficiency", 1.5), "evs[0].efficiency"),
    ],
)
def test_bad_input_exits_2_naming_the_field(tmp_path, mutate, field):
    r = _bad(tmp_path, mutate)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f": {field}: " in lines[0], r.stderr
    assert not (tmp_path / "s.json").exists()


def test_not_json_exits_2(tmp_path):
    (tmp_path / "x.json").write_text("{nope")
    r = flexd("plan", "--problem", "x.json", "--out", "s.json", cwd=tmp_path)
    assert r.returncode == 2 and "not JSON" in r.stderr
