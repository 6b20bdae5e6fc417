"""One site's devices: the common keys, the EV and preferences, then the brand's own options
parsed into its frozen dataclass (devices.registry), with its secrets from env or files."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any

from core.errors import FieldError
from core.fields import parse_fields
from devices.registry import BRANDS, CHARGER
from flexd.config.model import ConfigError, DeviceConfig, EvConfig
from flexd.config.values import get, num, refuse_inline_secrets, secret, secret_keys, table
from flexd.control.preferences import InputError, parse_preferences

COMMON = ("id", "brand", "host", "port", "poll_seconds", "timeout_s", "simulate", "preferences")


def parse_device(doc: Any, path: str, env: Mapping[str, str]) -> DeviceConfig:
    if not isinstance(doc, Mapping):
        raise ConfigError(path.rstrip("."), "must be a table")
    dev_id = get(doc, "id", str, path, None)
    if not dev_id:
        raise ConfigError(f"{path}id", "is required")
    name = get(doc, "brand", str, path, None)
    brand = BRANDS.get(name) if name is not None else None
    if brand is None:
        raise ConfigError(f"{path}brand", f"{name!r} is not one of {', '.join(BRANDS)}")
    secrets: dict[str, str] = {}
    for word in brand.all_secrets:
        value = secret(doc, word, path, env)
        if value is not None:
            secrets[word] = value
    refuse_inline_secrets(doc, path)
    ev = None
    if brand.kind == CHARGER:
        ev = _ev(table(doc, "ev", path), f"{path}ev.")
    try:
        prefs = parse_preferences(table(doc, "preferences", path))
    except InputError as exc:
        raise ConfigError(f"{path}preferences.{exc.field}", exc.reason) from None
    ignore = {*COMMON, *secret_keys(brand.all_secrets), *(("ev",) if ev is not None else ())}
    try:
        options: Any = parse_fields(brand.options, doc, path, ignore=ignore)
    except FieldError as exc:
        raise ConfigError(exc.field or path, exc.reason) from None
    port = int(get(doc, "port", int, path, 0))
    if not 0 <= port <= 65535:
        raise ConfigError(f"{path}port", "must be within 0..65535")
    return DeviceConfig(
        id=dev_id,
        brand=brand.name,
        kind=brand.kind,
        host=get(doc, "host", str, path, "127.0.0.1"),
        port=port,
        poll_seconds=num(doc, "poll_seconds", path, 30.0, 0.1),
        timeout_s=num(doc, "timeout_s", path, 5.0, 0.01),
        simulate=bool(get(doc, "simulate", bool, path, False)),
        secrets=secrets,
        options=options,
        ev=ev,
        preferences=prefs,
    )


def _ev(doc: Mapping[str, Any], path: str) -> EvConfig:
    try:
        ev = parse_fields(EvConfig, doc, path)
    except FieldError as exc:
        raise ConfigError(exc.field or path, exc.reason) from None
    for key in ("plug_in_local", "unplug_local"):
        value = getattr(ev, key)
        if value is not None:
            try:
                time.fromisoformat(value)
            except ValueError:
                raise ConfigError(f"{path}{key}", "must be a local time HH:MM") from None
    return ev
