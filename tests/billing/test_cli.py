"""`flexd bill` and `flexd dd` end to end through the real CLI: the worked example in
config/samples, and every bad input exiting 2 with one line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "config" / "samples"
RATED = SAMPLES / "bill-rated.csv"
BILLED = SAMPLES / "bill-billed.csv"
PERIOD = ["--from", "2025-10-01", "--to", "2026-12-01", "--bill-date", "2026-12-01"]


def flexd(*args):
    return subprocess.run([sys.executable, "-m", "flexd", *map(str, args)], capture_output=True,
                          text=True)  # fmt: skip


def test_the_samples_rated_files_are_what_flexd_rate_writes(tmp_path):
    for readings, rated in (("bill-readings.csv", RATED), ("bill-readings-estimated.csv", BILLED)):
        out = tmp_path / rated.name
        r = flexd("rate", "--tariff", "io-go", "--readings", SAMPLES / readings, "--out", out)
        assert r.returncode == 0, r.stderr
        assert out.read_text() == rated.read_text()


def test_the_worked_rebill(tmp_path):
    out = tmp_path / "bill.json"
    r = flexd("bill", "--rated", RATED, "--billed", BILLED, *PERIOD, "--out", out)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc == json.loads((SAMPLES / "bill.json").read_text())
    assert (doc["meter"], doc["from"], doc["to"], doc["bill_date"], doc["account_type"]) == (
        "1200012345678", "2025-10-01", "2026-12-01", "2026-12-01", "domestic")
    # The old day's peak half-hour rose from 1.00 to 3.20 kWh (26.07 p): +57.35 p, written off;
    # the recent peak half-hour fell from 1.50 to 1.10 kWh: -10.43 p, passed through.
    assert (doc["charges_p"], doc["previously_billed_p"], doc["difference_p"]) == (233, 186, 47)
    assert (doc["old_difference_p"], doc["written_off_p"], doc["billable_p"]) == (57, 57, -10)
    assert [d["type"] for d in doc["documents"]] == ["statement"]


def test_balance_customer_caused_and_business(tmp_path):
    out = tmp_path / "bill.json"
    r = flexd("bill", "--rated", RATED, "--billed", BILLED, *PERIOD, "--balance-p", "30",
              "--account-type", "business", "--out", out)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    # 30 p credit, and the recent change is a 10 p credit: 40 p left for the 57 p old increase.
    assert (doc["written_off_p"], doc["billable_p"]) == (17, 30)
    assert [d["type"] for d in doc["documents"]] == ["invoice", "credit_note"]
    r = flexd("bill", "--rated", RATED, "--billed", BILLED, *PERIOD, "--customer-caused",
              "--out", out)  # fmt: skip
    assert json.loads(out.read_text())["billable_p"] == 47


def test_a_first_bill(tmp_path):
    out = tmp_path / "bill.json"
    r = flexd("bill", "--rated", RATED, "--from", "2026-11-01", "--to", "2026-12-01",
              "--bill-date", "2026-12-01", "--out", out)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert (doc["rebill"], doc["charges_p"], doc["billable_p"]) == (False, 14 + 29 - 8 + 53, 88)


@pytest.mark.parametrize(("args", "says"), [
    (["--to", "2026-12-01", "--bill-date", "2026-12-01"], "--from: is required"),
    (["--from", "2026-12-01", "--to", "2026-11-01", "--bill-date", "2026-12-01"], "to: is before from"),
    (["--from", "2026-11-01", "--to", "2026-11-01", "--bill-date", "2026-12-01"], "period is empty"),
    (["--from", "2026-11-01", "--to", "2026-12-01", "--bill-date", "2026-11-20"], "overlaps the bill date"),
    (["--from", "2026-11-01", "--to", "2026-13-01", "--bill-date", "2026-12-01"], "--to: '2026-13-01' is not a date"),
    ([*PERIOD, "--balance-p", "1.5"], "--balance-p: '1.5' is not whole pence"),
    ([*PERIOD, "--account-type", "personal"], "invalid choice"),
    (["--from", "2020-01-01", "--to", "2020-02-01", "--bill-date", "2020-02-01"], "no rated lines"),
])  # fmt: skip
def test_bill_bad_input_exits_2_with_one_line(tmp_path, args, says):
    out = tmp_path / "bill.json"
    r = flexd("bill", "--rated", RATED, *args, "--out", out)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
    assert r.stderr.startswith("flexd bill: ")
    assert not out.exists()


@pytest.mark.parametrize(("text", "says"), [
    (RATED.read_text() + "OTHER,2026-11-03T00:30:00Z,2026-11-03,2,import,1.00,off-peak,7.00,7.00\n", "several meters"),
    (RATED.read_text() + RATED.read_text().splitlines()[5] + "\n", "overlapping lines"),
    (RATED.read_text().replace("83.42", "lots"), ":6: cost_p: 'lots' is not a number"),
    ("meter,start\n", "header lacks"),
])  # fmt: skip
def test_bad_rated_files(tmp_path, text, says):
    bad = tmp_path / "rated.csv"
    bad.write_text(text)
    r = flexd("bill", "--rated", bad, *PERIOD, "--out", tmp_path / "bill.json")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert says in r.stderr and str(bad) in r.stderr, r.stderr


def test_dd_end_to_end(tmp_path):
    out = tmp_path / "dd.json"
    r = flexd("dd", "--rated", RATED, "--tariff", "io-go", "--today", "2026-11-10",
              "--balance-p", "-2000", "--payment-p", "500", "--last-reading", "2026-11-03",
              "--supply-start", "2025-10-26", "--target-weeks", "1", "--out", out)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    keys = {"annual_cost_p", "base_payment_p", "next_april", "projected_april_balance_p",
            "target_april_balance_p", "adjustment_p", "recommended_payment_p", "change",
            "change_reason", "tracker", "tracker_reason"}  # fmt: skip
    assert keys <= set(doc)
    assert doc == json.loads((SAMPLES / "dd.json").read_text())
    assert doc["next_april"] == "2027-04-01"
    assert doc["recommended_payment_p"] == doc["base_payment_p"] + doc["adjustment_p"]
    assert doc["change"] == "increase" and doc["tracker"] == "too-little"


@pytest.mark.parametrize(("args", "says"), [
    (["--payment-p", "-1"], "--payment-p: must be >= 0"),
    (["--payment-p", "x"], "--payment-p: 'x' is not whole pence"),
    (["--today", "yesterday"], "--today"),
    (["--target-weeks", "nan"], "--target-weeks"),
    (["--tariff", "nope"], "no such tariff file"),
])  # fmt: skip
def test_dd_bad_input_exits_2_with_one_line(tmp_path, args, says):
    base = {"--rated": str(RATED), "--tariff": "io-go", "--today": "2026-11-10",
            "--balance-p": "0", "--payment-p": "500"}  # fmt: skip
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    r = flexd("dd", *[x for kv in base.items() for x in kv], "--out", tmp_path / "dd.json")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert says in r.stderr and r.stderr.startswith("flexd dd: ")


def test_dd_missing_flag_is_one_line(tmp_path):
    r = flexd("dd", "--rated", RATED, "--out", tmp_path / "dd.json")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("content", [b"\xff\xfe\x00bad", b"meter,start\n" + b"x" * 200_000 + b",y\n", None])
def test_hostile_rated_files_exit_2_with_one_line(tmp_path, content):
    bad = tmp_path / "rated.csv"
    if content is not None:
        bad.write_bytes(content)
    for cmd in (["bill", "--rated", bad, *PERIOD],
                ["dd", "--rated", bad, "--tariff", "io-go", "--today", "2026-11-10",
                 "--balance-p", "0", "--payment-p", "0"]):  # fmt: skip
        r = flexd(*cmd, "--out", tmp_path / "out.json")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert str(bad) in r.stderr and "Traceback" not in r.stderr
