"""Strict parsing of a TOML/JSON table into a frozen dataclass.

Every key must be a field (a misspelt key is an error, never silently ignored), every value must
have the field's type (a bool is not a number, NaN and infinities are not numbers), and a field's
``metadata`` may bound it: ``min``, ``max`` (inclusive) and ``choices``. Errors are
:class:`~core.errors.FieldError` naming the key path, e.g. ``sites[0].devices[1].pol_seconds:
unknown key``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from core.errors import FieldError

T = TypeVar("T")


def check_keys(doc: Mapping[str, Any], allowed: Collection[str], path: str) -> None:
    """Refuse any key of ``doc`` not in ``allowed``; ``path`` prefixes the key (``"api."``)."""
    for key in doc:
        if key not in allowed:
            raise FieldError(f"{path}{key}", "unknown key")


def parse_fields(
    cls: type[T], doc: Mapping[str, Any], path: str, *, ignore: Collection[str] = ()
) -> T:
    """Build ``cls`` (a dataclass) from ``doc``; keys in ``ignore`` belong to someone else."""
    if not isinstance(doc, Mapping):
        raise FieldError(path.rstrip(".") or "document", "must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    check_keys({k: v for k, v in doc.items() if k not in ignore}, fields, path)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in doc:
            kwargs[name] = _value(doc[name], hints[name], f.metadata, f"{path}{name}")
    return cls(**kwargs)


def _value(value: Any, hint: Any, meta: Mapping[str, Any], where: str) -> Any:
    # ``X | None``: TOML has no null, so a present key is always the X.
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        if not isinstance(value, bool):
            raise FieldError(where, "must be true or false")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(where, "must be an integer")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(where, "must be a number")
        if not math.isfinite(value):
            raise FieldError(where, "must be a finite number")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise FieldError(where, "must be a string")
    else:  # pragma: no cover - a field type this parser does not know is a programming error
        raise TypeError(f"{where}: unsupported field type {hint!r}")
    if "min" in meta and value < meta["min"]:
        raise FieldError(where, f"must be >= {meta['min']:g}")
    if "max" in meta and value > meta["max"]:
        raise FieldError(where, f"must be <= {meta['max']:g}")
    if "choices" in meta and value not in meta["choices"]:
        raise FieldError(where, f"must be one of {', '.join(map(str, meta['choices']))}")
    return value


def at_least(lo: float) -> dict[str, float]:
    """Field metadata: the value must be >= ``lo``."""
    return {"min": lo}


def within(lo: float, hi: float) -> dict[str, float]:
    """Field metadata: the value must be within ``lo..hi``."""
    return {"min": lo, "max": hi}
