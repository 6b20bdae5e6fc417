"""Tariffs as data: TOML files in config/tariffs/ parsed into a frozen Tariff.

Rates are p/kWh as Decimal (inc VAT); windows are local wall-clock times (Europe/London).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rating.model import RatingInputError

KINDS = ("io-go", "io-go-capped", "io-flux", "flux", "agile")
DISPATCH_MODES = ("completed", "planned")


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end) in local minutes of the day; wraps midnight when end <= start."""

    start_min: int
    end_min: int

    def contains(self, minute: int) -> bool:
        if self.start_min < self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min


@dataclass(frozen=True, slots=True)
class Tariff:
    name: str
    kind: str
    standing_charge_p: Decimal
    # Per register, per band: p/kWh. Bands depend on kind (see rating.engine).
    rates: Mapping[str, Mapping[str, Decimal]]
    windows: Mapping[str, Window]  # named local windows: "off-peak", "peak", ...
    dispatch_mode: str = "completed"
    allowance_blocks: int = 12  # capped IO Go: half-hour blocks per local midday-to-midday
    allowance_start_min: int = 12 * 60

    @property
    def capped(self) -> bool:
        return self.kind == "io-go-capped"

    def rate(self, register: str, band: str) -> Decimal:
        try:
            return self.rates[register][band]
        except KeyError:
            raise RatingInputError(
                f"tariff {self.name} has no {band} rate for {register}", field="register"
            ) from None


def _dec(doc: Mapping[str, Any], key: str, path: str) -> Decimal:
    if key not in doc:
        raise RatingInputError("missing", field=f"{path}{key}")
    try:
        value = Decimal(str(doc[key]))
    except InvalidOperation:
        raise RatingInputError("not a number", field=f"{path}{key}") from None
    if not value.is_finite():
        raise RatingInputError("not finite", field=f"{path}{key}")
    return value


def _minutes(value: Any, field: str) -> int:
    try:
        t = time.fromisoformat(str(value))
    except ValueError:
        raise RatingInputError("not a time HH:MM", field=field) from None
    if t.minute % 30 or t.second:
        raise RatingInputError("must be on a half-hour", field=field)
    return t.hour * 60 + t.minute


def parse_tariff(doc: Mapping[str, Any], name: str) -> Tariff:
    kind = doc.get("kind")
    if kind not in KINDS:
        raise RatingInputError(f"must be one of {', '.join(KINDS)}", field="kind")
    mode = doc.get("dispatch_mode", "completed")
    if mode not in DISPATCH_MODES:
        raise RatingInputError("must be completed or planned", field="dispatch_mode")
    windows: dict[str, Window] = {}
    for wname, w in dict(doc.get("windows", {})).items():
        windows[wname] = Window(
            _minutes(w.get("start"), f"windows.{wname}.start"),
            _minutes(w.get("end"), f"windows.{wname}.end"),
        )
    rates: dict[str, dict[str, Decimal]] = {}
    for register, table in dict(doc.get("rates", {})).items():
        if not isinstance(table, Mapping):
            raise RatingInputError("must be a table", field=f"rates.{register}")
        rates[register] = {band: _dec(table, band, f"rates.{register}.") for band in table}
    required: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
        "io-go": (("import", ("off-peak", "smart-charge", "peak")),),
        "io-go-capped": (
            ("import", ("off-peak", "smart-charge", "peak")),
            ("ev", ("off-peak", "peak")),
        ),
        "io-flux": (("import", ("off-peak", "peak")), ("export", ("off-peak", "peak"))),
        "flux": (("import", ("off-peak", "day", "peak")), ("export", ("off-peak", "day", "peak"))),
        "agile": (),
    }
    for register, bands in required[kind]:
        for band in bands:
            if band not in rates.get(register, {}):
                raise RatingInputError("missing", field=f"rates.{register}.{band}")
    need_windows = {
        "io-go": ("off-peak",), "io-go-capped": ("off-peak",), "io-flux": ("peak",),
        "flux": ("off-peak", "peak"), "agile": (),
    }[kind]  # fmt: skip
    for wname in need_windows:
        if wname not in windows:
            raise RatingInputError("missing", field=f"windows.{wname}")
    allowance = doc.get("allowance", {})
    blocks = int(allowance.get("blocks", 12))
    if blocks < 0:
        raise RatingInputError("must be >= 0", field="allowance.blocks")
    return Tariff(
        name=str(doc.get("name", name)),
        kind=kind,
        standing_charge_p=_dec(doc, "standing_charge_p", ""),
        rates=rates,
        windows=windows,
        dispatch_mode=mode,
        allowance_blocks=blocks,
        allowance_start_min=_minutes(
            allowance.get("period_start", "12:00"), "allowance.period_start"
        ),
    )


def config_dir() -> Path:
    """config/ beside the packages (a checkout or editable install), or $FLEXD_CONFIG_DIR."""
    env = os.environ.get("FLEXD_CONFIG_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "config"


def load_tariff(name_or_path: str | Path, config: Path | None = None) -> Tariff:
    """A tariff by name (config/tariffs/NAME.toml) or by path to a TOML file."""
    p = Path(name_or_path)
    if p.suffix != ".toml":
        p = (config or config_dir()) / "tariffs" / f"{name_or_path}.toml"
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise RatingInputError("no such tariff file", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise RatingInputError(f"cannot read ({why})", file=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise RatingInputError(f"not valid TOML ({exc})", file=str(p)) from None
    try:
        return parse_tariff(doc, p.stem)
    except RatingInputError as exc:
        raise RatingInputError(exc.reason, field=exc.field, file=str(p)) from None
