"""Reading and writing the rating contract's files (the only I/O in rating/).

readings.csv: meter,start,kwh[,register]; dispatches.csv: meter,start,end,kind[,status][,location];
prices.json: the Octopus REST unit-rates shape; rated.csv / JSON out. Any bad row raises
RatingInputError naming the file and line; nothing is written then.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rating.model import (
    KINDS,
    LOCATIONS,
    REGISTERS,
    STATUSES,
    Dispatch,
    RatedSlot,
    RatingInputError,
    Reading,
)
from rating.octopus import UnitRate, parse_unit_rates
from rating.prices import PriceBook

RATED_COLUMNS = (
    "meter", "start", "settlement_date", "settlement_period", "register", "kwh", "band",
    "unit_rate_p", "cost_p",
)  # fmt: skip


def _rows(path: Path, required: Sequence[str]) -> tuple[list[dict[str, str]], list[int]]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RatingInputError(exc.strerror or "cannot read", file=name) from None
    except UnicodeDecodeError:
        raise RatingInputError("not UTF-8 text", file=name) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise RatingInputError(f"header lacks {', '.join(missing)}", file=name, line=1)
    reader.fieldnames = header
    rows, lines = [], []
    try:
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            rows.append({k: (v or "").strip() for k, v in row.items() if isinstance(k, str)})
            lines.append(reader.line_num)
    except csv.Error as exc:  # e.g. a field over the csv module's 128 KiB limit
        raise RatingInputError(f"not CSV: {exc}", file=name, line=reader.line_num + 1) from None
    return rows, lines


def parse_instant(
    text: str, field: str, file: str | None = None, line: int | None = None
) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RatingInputError(f"bad instant {text!r}", field=field, file=file, line=line) from None
    if t.tzinfo is None:
        raise RatingInputError(f"instant {text!r} has no offset", field=field, file=file, line=line)
    return t


# Half-hourly settlement began in 1990; nothing before it (or after 2100) is a real reading.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
DEFAULT_MAX_KWH = Decimal(30)


@dataclass(frozen=True, slots=True)
class ReadingLimits:
    """What a plausible reading is. A domestic meter behind a 100 A fuse passes at most ~11.5 kWh
    in a half-hour; 30 leaves room for a three-phase supply. Glitches such as 65.534 kWh (a
    16-bit register's 0xFFFE) are refused. ``not_after`` is the current half-hour's start (the
    caller reads its clock: this module does not), ``not_before`` the start of the window."""

    max_kwh: Decimal = DEFAULT_MAX_KWH
    not_before: datetime | None = None
    not_after: datetime | None = None


def reading_limits(max_kwh: Decimal, window_months: int, current: datetime) -> ReadingLimits:
    """No reading after ``current`` (the caller's current half-hour), none older than
    ``window_months`` before it (0: no limit)."""
    before = current - timedelta(days=round(window_months * 365.25 / 12)) if window_months else None
    return ReadingLimits(max_kwh=max_kwh, not_before=before, not_after=current)


def parse_reading(
    meter: str, start: str, kwh: str, register: str | None,
    file: str | None = None, line: int | None = None, limits: ReadingLimits | None = None,
) -> Reading:  # fmt: skip
    """One readings row, validated as the contract says (also used by the HTTP API)."""
    if not meter:
        raise RatingInputError("empty meter", field="meter", file=file, line=line)
    if len(kwh) > 40:
        raise RatingInputError("kwh is not a plausible number (over 40 characters)", field="kwh",
                               file=file, line=line)  # fmt: skip
    t = parse_instant(start, "start", file, line)
    if not EARLIEST <= t < LATEST:
        raise RatingInputError(f"{start} is outside 1990..2099", field="start", file=file,
                               line=line)  # fmt: skip
    if t.timestamp() % 1800:
        raise RatingInputError(
            f"{start} is not on a half-hour boundary", field="start", file=file, line=line
        )
    try:
        value = Decimal(kwh)
    except InvalidOperation:
        raise RatingInputError(
            f"kwh {kwh!r} is not a number", field="kwh", file=file, line=line
        ) from None
    if not value.is_finite():
        raise RatingInputError(f"kwh {kwh!r} is not a number", field="kwh", file=file, line=line)
    if value < 0:
        raise RatingInputError(f"kwh {kwh} is negative", field="kwh", file=file, line=line)
    if limits is not None:
        if value > limits.max_kwh:
            raise RatingInputError(
                f"kwh {kwh} is above the plausible maximum of {limits.max_kwh} per half-hour",
                field="kwh", file=file, line=line,
            )  # fmt: skip
        if limits.not_after is not None and t > limits.not_after:
            raise RatingInputError(f"{start} is after the current half-hour", field="start",
                                   file=file, line=line)  # fmt: skip
        if limits.not_before is not None and t < limits.not_before:
            raise RatingInputError(
                f"{start} is before the accepted window (from {_iso(limits.not_before)})",
                field="start", file=file, line=line,
            )  # fmt: skip
    reg = register or "import"
    if reg not in REGISTERS:
        raise RatingInputError(f"unknown register {reg!r}", field="register", file=file, line=line)
    return Reading(meter, t, value, reg)


def check_duplicates(
    readings: Sequence[Reading], lines: Sequence[int] | None, file: str | None
) -> None:
    seen: dict[tuple[str, float, str], int] = {}
    for i, r in enumerate(readings):
        key = (r.meter, r.start.timestamp(), r.register)
        line = lines[i] if lines else i + 1
        if key in seen:
            raise RatingInputError(
                f"duplicate (meter, start, register) {r.meter} {r.start.isoformat()} {r.register}"
                f" (first at line {seen[key]})",
                file=file, line=line,
            )  # fmt: skip
        seen[key] = line


@dataclass(frozen=True, slots=True)
class Reject:
    """A refused readings row: its line, its cells and why."""

    line: int
    row: dict[str, str]
    field: str
    reason: str


def read_readings(
    path: Path | str, limits: ReadingLimits | None = None, rejects: list[Reject] | None = None
) -> list[Reading]:
    """Every row of a readings file. A bad row raises, naming file:line; with ``rejects`` it is
    appended there instead and the rest are kept."""
    p = Path(path)
    rows, lines = _rows(p, ("meter", "start", "kwh"))
    out: list[Reading] = []
    kept: list[int] = []
    for r, ln in zip(rows, lines, strict=True):
        try:
            out.append(parse_reading(r["meter"], r["start"], r["kwh"], r.get("register") or None,
                                     str(p), ln, limits))  # fmt: skip
            kept.append(ln)
        except RatingInputError as exc:
            if rejects is None:
                raise
            rejects.append(Reject(ln, r, exc.field or "", exc.reason))
    check_duplicates(out, kept, str(p))
    return out


REJECT_COLUMNS = ("line", "meter", "start", "kwh", "register", "field", "reason")


def rejects_csv_text(rejects: Sequence[Reject]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REJECT_COLUMNS)
    for j in rejects:
        w.writerow([j.line, j.row.get("meter", ""), j.row.get("start", ""), j.row.get("kwh", ""),
                    j.row.get("register", ""), j.field, j.reason])  # fmt: skip
    return buf.getvalue()


def read_dispatches(path: Path | str) -> list[Dispatch]:
    p = Path(path)
    name = str(p)
    rows, lines = _rows(p, ("meter", "start", "end", "kind"))
    out = []
    for r, ln in zip(rows, lines, strict=True):
        start = parse_instant(r["start"], "start", name, ln)
        end = parse_instant(r["end"], "end", name, ln)
        if end <= start:
            raise RatingInputError("end must be after start", field="end", file=name, line=ln)
        kind = r["kind"].lower()
        if kind not in KINDS:
            raise RatingInputError(f"unknown kind {r['kind']!r}", field="kind", file=name, line=ln)
        status = (r.get("status") or "completed").lower()
        if status not in STATUSES:
            raise RatingInputError(f"unknown status {status!r}", field="status", file=name, line=ln)
        location = (r.get("location") or "home").lower()
        if location not in LOCATIONS:
            raise RatingInputError(
                f"unknown location {location!r}", field="location", file=name, line=ln
            )
        out.append(Dispatch(r["meter"], start, end, kind, status, location))
    return out


def read_unit_rates(path: Path | str) -> list[UnitRate]:
    """A prices file in the Octopus unit-rates shape, as half-hours (errors name the file)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except OSError as exc:
        raise RatingInputError(exc.strerror or "cannot read", file=str(p)) from None
    except json.JSONDecodeError as exc:
        raise RatingInputError(f"not JSON ({exc.msg})", file=str(p), line=exc.lineno) from None
    except UnicodeDecodeError:
        raise RatingInputError("not UTF-8 text", file=str(p)) from None
    except RecursionError:
        raise RatingInputError("not JSON we accept (nested too deep)", file=str(p)) from None
    return parse_unit_rates(doc, file=str(p))


def read_prices(path: Path | str) -> PriceBook:
    """Agile import prices from a file, for ``flexd rate --prices``."""
    book = PriceBook()
    book.add("import", read_unit_rates(path))
    return book


RATED_REGISTERS = (*REGISTERS, "standing")


def parse_rated(row: dict[str, str], file: str | None = None, line: int | None = None) -> RatedSlot:
    """One rated.csv row back into a RatedSlot (billing reads what ``flexd rate`` wrote)."""

    def dec(name: str) -> Decimal:
        text = row[name]
        try:
            value = Decimal(text) if len(text) <= 40 else Decimal("NaN")
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite():
            raise RatingInputError(f"{text!r} is not a number", field=name, file=file, line=line)
        return value

    if not row["meter"]:
        raise RatingInputError("empty meter", field="meter", file=file, line=line)
    start = parse_instant(row["start"], "start", file, line)
    if not EARLIEST <= start < LATEST or start.timestamp() % 1800:
        raise RatingInputError(f"{row['start']} is not a half-hour start in 1990..2099",
                               field="start", file=file, line=line)  # fmt: skip
    try:
        day = date.fromisoformat(row["settlement_date"])
        period = int(row["settlement_period"])
    except ValueError:
        bad = "settlement_period" if _is_date(row["settlement_date"]) else "settlement_date"
        raise RatingInputError(f"bad {bad} {row[bad]!r}", field=bad, file=file, line=line) from None
    if not 1 <= period <= 50:
        raise RatingInputError("must be within 1..50", field="settlement_period", file=file,
                               line=line)  # fmt: skip
    register = row["register"]
    if register not in RATED_REGISTERS:
        raise RatingInputError(f"unknown register {register!r}", field="register", file=file,
                               line=line)  # fmt: skip
    if not row["band"]:
        raise RatingInputError("empty band", field="band", file=file, line=line)
    return RatedSlot(row["meter"], start.astimezone(UTC), day, period, register, dec("kwh"),
                     row["band"], dec("unit_rate_p"), dec("cost_p"))  # fmt: skip


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def read_rated(path: Path | str) -> list[RatedSlot]:
    """Every row of a rated.csv file (the contract :func:`rated_csv_text` writes)."""
    p = Path(path)
    rows, lines = _rows(p, RATED_COLUMNS)
    return [parse_rated(r, str(p), ln) for r, ln in zip(rows, lines, strict=True)]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def rated_row(s: RatedSlot) -> list[str]:
    return [
        s.meter, _iso(s.start), s.settlement_date.isoformat(), str(s.settlement_period),
        s.register, str(s.kwh), s.band, str(s.unit_rate_p), str(s.cost_p),
    ]  # fmt: skip


def rated_csv_text(slots: Sequence[RatedSlot]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RATED_COLUMNS)
    w.writerows(rated_row(s) for s in slots)
    return buf.getvalue()


def rated_to_json(slots: Sequence[RatedSlot]) -> list[dict[str, Any]]:
    return [
        dict(zip(RATED_COLUMNS, rated_row(s), strict=True))
        | {"settlement_period": s.settlement_period}
        for s in slots
    ]


def _atomic_write(out: Path, text: str) -> None:
    """Write to a temp file beside ``out`` and rename: a reader never sees half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(out: Path | str, text: str) -> None:
    """Any output file (bill.json, dd.json) written whole or not at all."""
    _atomic_write(Path(out), text)


def write_rated_csv(slots: Sequence[RatedSlot], out: Path | str) -> None:
    _atomic_write(Path(out), rated_csv_text(slots))


def write_rated_csv_text(text: str, out: Path | str) -> None:
    """Write rated.csv text (e.g. from :func:`rating.csv_fast.rate_csv_text`) atomically."""
    _atomic_write(Path(out), text)


def write_rated_json(slots: Sequence[RatedSlot], out: Path | str) -> None:
    _atomic_write(Path(out), json.dumps(rated_to_json(slots), indent=1) + "\n")
