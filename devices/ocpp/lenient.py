"""Lenient reading of what real OCPP 1.6 chargers send: accept, normalise and log.

The ocpp library checks every incoming frame against the OCPP 1.6 JSON schemas, which forbid
extra fields and take enums case-sensitively. Real chargers break both (an ``evseId`` or vendor
key in BootNotification, ``SuspendedEv``, ``charging``, ``soc``, numbers sent as strings and the
reverse), and a refused BootNotification means a charger is never accepted. So incoming CALLs
and CALLRESULTs skip the library's schema check and pass through here instead; what flexd
sends is still checked against the schemas (:func:`check_outgoing`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from ocpp.messages import Call, validate_payload
from ocpp.v16 import call_result
from ocpp.v16.enums import (
    ChargePointErrorCode,
    ChargePointStatus,
    Measurand,
    Phase,
    UnitOfMeasure,
)

Quirk = Callable[[str], None]  # told what was normalised, once per kind


def canonical(value: Any, enum: type[StrEnum], what: str, quirk: Quirk) -> str:
    """The enum's own spelling of ``value`` matched without case (``SuspendedEv`` is
    ``SuspendedEV``); an unknown value is kept as sent, and reported."""
    text = str(value)
    for member in enum:
        if member.value == text:
            return text
    folded = text.casefold()
    for member in enum:
        if member.value.casefold() == folded:
            quirk(f"{what} {text!r} read as {member.value!r}")
            return str(member.value)
    quirk(f"{what} {text!r} is not an OCPP 1.6 value")
    return text


def as_int(value: Any, what: str, quirk: Quirk, default: int = 0) -> int:
    if isinstance(value, bool):
        quirk(f"{what} {value!r} is a boolean")
        return int(value)
    if isinstance(value, int):
        return value
    try:
        out = int(float(str(value)))
    except (ValueError, OverflowError):  # "abc", "inf", "1e400"
        quirk(f"{what} {value!r} is not a number; taken as {default}")
        return default
    quirk(f"{what} {value!r} sent as {type(value).__name__}")
    return out


def as_float(value: Any, what: str, quirk: Quirk) -> float | None:
    """A finite number, or None (NaN and infinities would poison power and energy)."""
    try:
        out = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else float(str(value))
    except (ValueError, OverflowError):
        out = math.nan
    if not math.isfinite(out):
        quirk(f"{what} {value!r} is not a finite number; ignored")
        return None
    return out


def as_str(value: Any, what: str, quirk: Quirk) -> str:
    if not isinstance(value, str):
        quirk(f"{what} {value!r} sent as {type(value).__name__}")
        return "" if value is None else str(value)
    return value


def extra_fields(payload: dict[str, Any], known: type[Any], action: str, quirk: Quirk) -> None:
    """Report keys the schema does not have (they are ignored, not refused)."""
    names = {f.name for f in dataclasses.fields(known)}
    extra = sorted(set(payload) - names)
    if extra:
        quirk(f"{action} extra fields {', '.join(extra)} ignored")


def sampled_value(sv: Any, quirk: Quirk) -> dict[str, Any] | None:
    """One SampledValue with its measurand, phase and unit spelled as OCPP spells them and its
    value a number, or None when it has no usable value."""
    if not isinstance(sv, dict):
        quirk(f"sampledValue {sv!r} is not an object; ignored")
        return None
    value = as_float(sv.get("value"), "sampledValue.value", quirk)
    if value is None:
        return None
    out: dict[str, Any] = {"value": value}
    out["measurand"] = canonical(sv.get("measurand", Measurand.energy_active_import_register),
                                 Measurand, "measurand", quirk)  # fmt: skip
    if sv.get("phase") is not None:
        out["phase"] = canonical(sv["phase"], Phase, "phase", quirk)
    if sv.get("unit") is not None:
        out["unit"] = canonical(sv["unit"], UnitOfMeasure, "unit", quirk)
    return out


def status(value: Any, quirk: Quirk) -> str:
    return canonical(value, ChargePointStatus, "status", quirk)


def error_code(value: Any, quirk: Quirk) -> str:
    return canonical(value, ChargePointErrorCode, "errorCode", quirk)


class LenientResults:
    """Stands in for ``ocpp.v16.call_result`` in a ChargePoint: the library builds a call's
    result with ``cls(**payload)``, which fails on any key the dataclass lacks. Unknown keys
    are dropped (and reported), missing ones left None, and a status's case normalised."""

    def __init__(self, quirk: Quirk) -> None:
        self._quirk = quirk

    def __getattr__(self, name: str) -> Callable[..., Any]:
        cls = getattr(call_result, name)
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING}  # fmt: skip

        def build(**payload: Any) -> Any:
            extra = sorted(set(payload) - names)
            if extra:
                self._quirk(f"{name}.conf extra fields {', '.join(extra)} ignored")
            kept = {k: v for k, v in payload.items() if k in names}
            for k in required - set(kept):
                self._quirk(f"{name}.conf has no {k}")
                kept[k] = None
            if isinstance(kept.get("status"), str):
                kept["status"] = _status_word(kept["status"])
            return cls(**kept)

        return build


def _status_word(text: str) -> str:
    """Result statuses ("Accepted", "Rejected", "NotSupported", ...) in their spec case."""
    words = {w.casefold(): w for w in ("Accepted", "Rejected", "NotSupported", "Unknown",
                                       "Pending", "Scheduled", "Unlocked", "UnlockFailed",
                                       "Occupied", "Faulted", "Unavailable")}  # fmt: skip
    return words.get(text.casefold(), text)


def accepted(result: Any) -> bool:
    return str(getattr(result, "status", "")).casefold() == "accepted"


async def check_outgoing(action: str, payload: dict[str, Any]) -> None:
    """What flexd sends stays valid against the OCPP 1.6 schemas (raises ValidationError)."""
    await validate_payload(Call(unique_id="check", action=action, payload=payload), "1.6")
