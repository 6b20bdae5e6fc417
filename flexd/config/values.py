"""Typed reads of one key of a TOML table, each error naming the key path."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from core.errors import FieldError
from core.fields import check_keys
from flexd.config.model import ConfigError

SECRET_WORDS = ("password", "token", "secret", "key")


def table(doc: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}{key}", "must be a table")
    return value


def known(doc: Mapping[str, Any], allowed: Collection[str], path: str) -> None:
    """A misspelt key is an error, never silently ignored."""
    try:
        check_keys(doc, allowed, path)
    except FieldError as exc:
        raise ConfigError(exc.field or path, exc.reason) from None


def get(
    doc: Mapping[str, Any], key: str, typ: type | tuple[type, ...], path: str, default: Any
) -> Any:
    if key not in doc:
        return default
    value = doc[key]
    if isinstance(value, bool) and bool not in (typ if isinstance(typ, tuple) else (typ,)):
        raise ConfigError(f"{path}{key}", "must not be a boolean")
    if not isinstance(value, typ):
        names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise ConfigError(f"{path}{key}", f"must be {names}")
    return value


def num(doc: Mapping[str, Any], key: str, path: str, default: float, lo: float = 0.0) -> float:
    value = float(get(doc, key, (int, float), path, default))
    if not math.isfinite(value):
        raise ConfigError(f"{path}{key}", "must be a finite number")
    if value < lo:
        raise ConfigError(f"{path}{key}", f"must be >= {lo:g}")
    return value


def secret(doc: Mapping[str, Any], name: str, path: str, env: Mapping[str, str]) -> str | None:
    """Resolve ``name_env`` or ``name_file``; an inline ``name`` is refused."""
    if name in doc:
        raise ConfigError(
            f"{path}{name}", f"secrets are never inline: use {name}_env or {name}_file"
        )
    if f"{name}_env" in doc:
        var = get(doc, f"{name}_env", str, path, None)
        if var not in env:
            raise ConfigError(f"{path}{name}_env", f"environment variable {var} is not set")
        return env[var]
    if f"{name}_file" in doc:
        p = Path(get(doc, f"{name}_file", str, path, None))
        try:
            return p.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ConfigError(f"{path}{name}_file", f"cannot read {p}: {why}") from None
    return None


def secret_keys(words: Collection[str]) -> set[str]:
    return {f"{w}{suffix}" for w in words for suffix in ("_env", "_file")}


def refuse_inline_secrets(doc: Mapping[str, Any], path: str) -> None:
    for key in doc:
        if any(w in key for w in SECRET_WORDS) and not key.endswith(("_env", "_file")):
            raise ConfigError(f"{path}{key}", "secrets are never inline: use _env or _file")
