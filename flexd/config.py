"""flexd.toml parsed once at start-up into frozen dataclasses.

Errors raise :class:`ConfigError` naming the key path and the reason. Secrets are never inline:
a key ending in ``_env`` names an environment variable and one ending in ``_file`` a file; the
loader resolves them once.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import FieldError
from flexd.control.preferences import InputError, Preferences, parse_preferences

INVERTER_BRANDS = ("givenergy", "solaredge", "enphase", "powerwall")
CHARGER_BRANDS = ("ocpp", "openevse")
ROLES = ("app", "billing", "admin")
SECRET_WORDS = ("password", "token", "secret", "key")


class ConfigError(FieldError):
    """A config key path and the reason it is refused."""

    field: str

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path


@dataclass(frozen=True, slots=True)
class EvConfig:
    capacity_kwh: float = 60.0
    max_charge_kw: float = 7.4
    efficiency: float = 0.9
    initial_soc_pct: float = 30.0  # the user's entered SoC when no source reports one
    plug_in_local: str | None = None  # simulation only: "18:00"
    unplug_local: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    id: str
    brand: str
    kind: str  # "inverter" | "charger"
    host: str = "127.0.0.1"
    port: int = 0
    poll_seconds: float = 30.0
    timeout_s: float = 5.0
    simulate: bool = False
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)
    ev: EvConfig | None = None
    preferences: Preferences = field(default_factory=Preferences)


@dataclass(frozen=True, slots=True)
class SiteConfig:
    id: str
    account: str
    meter: str
    tariff: str
    import_kw: float = 15.0
    export_kw: float = 5.0
    reserve_pct: float = 10.0
    replan_soc_margin_pct: float = 5.0
    stability_threshold_p: float = 1.0
    devices: tuple[DeviceConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenConfig:
    name: str
    role: str
    sha256: str = field(repr=False)
    account: str | None = None


@dataclass(frozen=True, slots=True)
class ApiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = 1_048_576
    tokens: tuple[TokenConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class MqttConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca_file: Path | None = None  # trust this CA for the broker (else the system's)
    ha_discovery: bool = True
    prefix: str = "flexd"


@dataclass(frozen=True, slots=True)
class PriceConfig:
    source: str = "simulator"  # "url" | "file" | "simulator"
    base_url: str = "https://api.octopus.energy"
    product: str = "AGILE-24-10-01"
    import_tariff: str = "E-1R-AGILE-24-10-01-C"
    export_tariff: str | None = "E-1R-AGILE-OUTGOING-19-05-13-C"
    import_file: Path | None = None
    export_file: Path | None = None
    poll_minutes: float = 30.0
    publish_local: str = "16:00"  # simulator: when next-day prices appear
    late_minutes: float = 0.0  # simulator: publish this much later (tests of late prices)


_PRICE_DEFAULTS = PriceConfig()


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    start: datetime | None = None  # UTC; default: today's local 12:00
    speed: float = 3600.0
    hours: float = 24.0


@dataclass(frozen=True, slots=True)
class Config:
    database: Path
    log_format: str = "auto"  # "auto" | "json" | "console"
    cycle_seconds: float = 300.0
    planner_threads: int = 0  # solves at once; 0: one per core
    api: ApiConfig = ApiConfig()
    mqtt: MqttConfig = MqttConfig()
    prices: PriceConfig = PriceConfig()
    simulation: SimulationConfig = SimulationConfig()
    sites: tuple[SiteConfig, ...] = ()
    source: Path | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- parsing helpers ------------------------------------------------------------------------


def _table(doc: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}{key}", "must be a table")
    return value


def _get(
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


def _num(doc: Mapping[str, Any], key: str, path: str, default: float, lo: float = 0.0) -> float:
    value = float(_get(doc, key, (int, float), path, default))
    if value < lo:
        raise ConfigError(f"{path}{key}", f"must be >= {lo:g}")
    return value


def _secret(doc: Mapping[str, Any], name: str, path: str, env: Mapping[str, str]) -> str | None:
    """Resolve ``name_env`` or ``name_file``; an inline ``name`` is refused."""
    if name in doc:
        raise ConfigError(
            f"{path}{name}", f"secrets are never inline: use {name}_env or {name}_file"
        )
    if f"{name}_env" in doc:
        var = _get(doc, f"{name}_env", str, path, None)
        if var not in env:
            raise ConfigError(f"{path}{name}_env", f"environment variable {var} is not set")
        return env[var]
    if f"{name}_file" in doc:
        p = Path(_get(doc, f"{name}_file", str, path, None))
        try:
            return p.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{path}{name}_file", f"cannot read {p}: {exc.strerror}") from None
    return None


def _device(doc: Mapping[str, Any], path: str, env: Mapping[str, str]) -> DeviceConfig:
    dev_id = _get(doc, "id", str, path, None)
    if not dev_id:
        raise ConfigError(f"{path}id", "is required")
    brand = _get(doc, "brand", str, path, None)
    if brand in INVERTER_BRANDS:
        kind = "inverter"
    elif brand in CHARGER_BRANDS:
        kind = "charger"
    else:
        allowed = ", ".join(INVERTER_BRANDS + CHARGER_BRANDS)
        raise ConfigError(f"{path}brand", f"{brand!r} is not one of {allowed}")
    secrets: dict[str, str] = {}
    for word in ("password", "token", "fleet_token", "vehicle_token", "vehicle_refresh_token"):
        value = _secret(doc, word, path, env)
        if value is not None:
            secrets[word] = value
    for key in doc:
        if any(w in key for w in SECRET_WORDS) and not key.endswith(("_env", "_file")):
            raise ConfigError(f"{path}{key}", "secrets are never inline: use _env or _file")
    ev = None
    if kind == "charger":
        evdoc = _table(doc, "ev", path)
        ev = EvConfig(
            capacity_kwh=_num(evdoc, "capacity_kwh", f"{path}ev.", 60.0, 1.0),
            max_charge_kw=_num(evdoc, "max_charge_kw", f"{path}ev.", 7.4, 0.1),
            efficiency=_num(evdoc, "efficiency", f"{path}ev.", 0.9, 0.1),
            initial_soc_pct=_num(evdoc, "initial_soc_pct", f"{path}ev.", 30.0),
            plug_in_local=_get(evdoc, "plug_in_local", str, f"{path}ev.", None),
            unplug_local=_get(evdoc, "unplug_local", str, f"{path}ev.", None),
        )
    try:
        prefs = parse_preferences(_table(doc, "preferences", path))
    except InputError as exc:
        raise ConfigError(f"{path}preferences.{exc.field}", exc.reason) from None
    known = {
        "id",
        "brand",
        "host",
        "port",
        "poll_seconds",
        "timeout_s",
        "simulate",
        "ev",
        "preferences",
    }
    options = {k: v for k, v in doc.items() if k not in known and not k.endswith(("_env", "_file"))}
    return DeviceConfig(
        id=dev_id,
        brand=brand,
        kind=kind,
        host=_get(doc, "host", str, path, "127.0.0.1"),
        port=int(_get(doc, "port", int, path, 0)),
        poll_seconds=_num(doc, "poll_seconds", path, 30.0, 0.1),
        timeout_s=_num(doc, "timeout_s", path, 5.0, 0.01),
        simulate=bool(_get(doc, "simulate", bool, path, False)),
        secrets=secrets,
        options=options,
        ev=ev,
        preferences=prefs,
    )


def _site(doc: Mapping[str, Any], path: str, env: Mapping[str, str]) -> SiteConfig:
    for key in ("id", "meter", "tariff"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise ConfigError(f"{path}{key}", "is required (a string)")
    devices = doc.get("devices", [])
    if not isinstance(devices, list):
        raise ConfigError(f"{path}devices", "must be an array of tables")
    parsed = tuple(_device(d, f"{path}devices[{i}].", env) for i, d in enumerate(devices))
    ids = [d.id for d in parsed]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}devices", "device ids must be unique")
    return SiteConfig(
        id=doc["id"],
        account=_get(doc, "account", str, path, doc["id"]),
        meter=doc["meter"],
        tariff=doc["tariff"],
        import_kw=_num(doc, "import_kw", path, 15.0, 0.1),
        export_kw=_num(doc, "export_kw", path, 5.0),
        reserve_pct=_num(doc, "reserve_pct", path, 10.0),
        replan_soc_margin_pct=_num(doc, "replan_soc_margin_pct", path, 5.0),
        stability_threshold_p=_num(doc, "stability_threshold_p", path, 1.0),
        devices=parsed,
    )


def _tokens(doc: Mapping[str, Any], env: Mapping[str, str]) -> tuple[TokenConfig, ...]:
    raw = doc.get("tokens", [])
    if not isinstance(raw, list):
        raise ConfigError("api.tokens", "must be an array of tables")
    out = []
    for i, t in enumerate(raw):
        path = f"api.tokens[{i}]."
        name = _get(t, "name", str, path, f"token{i}")
        role = _get(t, "role", str, path, None)
        if role not in ROLES:
            raise ConfigError(f"{path}role", f"must be one of {', '.join(ROLES)}")
        account = _get(t, "account", str, path, None)
        if role == "app" and not account:
            raise ConfigError(f"{path}account", "an app token is bound to one account")
        digest = _get(t, "sha256", str, path, None)
        if digest is None:
            token = _secret(t, "token", path, env)
            if token is None:
                raise ConfigError(path.rstrip("."), "needs sha256, token_env or token_file")
            digest = hash_token(token)
        elif len(digest) != 64:
            raise ConfigError(f"{path}sha256", "must be a hex SHA-256 digest")
        out.append(TokenConfig(name=name, role=role, sha256=digest.lower(), account=account))
    return tuple(out)


def parse_config(
    doc: Mapping[str, Any], base_dir: Path, env: Mapping[str, str] | None = None
) -> Config:
    env = os.environ if env is None else env
    daemon = _table(doc, "daemon", "")
    db = Path(_get(daemon, "database", str, "daemon.", "flexd.sqlite"))
    api = _table(doc, "api", "")
    mqtt = _table(doc, "mqtt", "")
    prices = _table(doc, "prices", "")
    sim = _table(doc, "simulation", "")
    source = _get(prices, "source", str, "prices.", "simulator")
    if source not in ("url", "file", "simulator"):
        raise ConfigError("prices.source", "must be url, file or simulator")

    def rel(p: str | None) -> Path | None:
        return None if p is None else (base_dir / p if not Path(p).is_absolute() else Path(p))

    start = _get(sim, "start", (str, datetime), "simulation.", None)
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start)
        except ValueError:
            raise ConfigError("simulation.start", "must be an ISO-8601 instant") from None
    if start is not None and start.tzinfo is None:
        raise ConfigError("simulation.start", "must carry an offset (Z or +01:00)")
    sites_raw = doc.get("sites", [])
    if not isinstance(sites_raw, list) or not sites_raw:
        raise ConfigError("sites", "at least one [[sites]] table is required")
    sites = tuple(_site(s, f"sites[{i}].", env) for i, s in enumerate(sites_raw))
    if len({s.id for s in sites}) != len(sites):
        raise ConfigError("sites", "site ids must be unique")
    all_dev = [d.id for s in sites for d in s.devices]
    if len(set(all_dev)) != len(all_dev):
        raise ConfigError("sites", "device ids must be unique across sites")
    api_cfg = ApiConfig(
        enabled=bool(_get(api, "enabled", bool, "api.", True)),
        host=_get(api, "host", str, "api.", "127.0.0.1"),
        port=int(_get(api, "port", int, "api.", 8080)),
        tls_cert=rel(_get(api, "tls_cert", str, "api.", None)),
        tls_key=rel(_get(api, "tls_key", str, "api.", None)),
        max_body_bytes=int(_get(api, "max_body_bytes", int, "api.", 1_048_576)),
        tokens=_tokens(api, env),
    )
    if (api_cfg.tls_cert is None) != (api_cfg.tls_key is None):
        raise ConfigError("api.tls_key", "tls_cert and tls_key go together")
    return Config(
        database=db if db.is_absolute() else base_dir / db,
        log_format=_get(daemon, "log_format", str, "daemon.", "auto"),
        cycle_seconds=_num(daemon, "cycle_seconds", "daemon.", 300.0, 1.0),
        planner_threads=int(_num(daemon, "planner_threads", "daemon.", 0, 0)),
        api=api_cfg,
        mqtt=MqttConfig(
            enabled=bool(_get(mqtt, "enabled", bool, "mqtt.", False)),
            host=_get(mqtt, "host", str, "mqtt.", "127.0.0.1"),
            port=int(_get(mqtt, "port", int, "mqtt.", 1883)),
            username=_secret(mqtt, "username", "mqtt.", env),
            password=_secret(mqtt, "password", "mqtt.", env),
            tls=bool(_get(mqtt, "tls", bool, "mqtt.", False)),
            tls_ca_file=rel(_get(mqtt, "tls_ca_file", str, "mqtt.", None)),
            ha_discovery=bool(_get(mqtt, "ha_discovery", bool, "mqtt.", True)),
            prefix=_get(mqtt, "prefix", str, "mqtt.", "flexd"),
        ),
        prices=PriceConfig(
            source=source,
            base_url=_get(prices, "base_url", str, "prices.", _PRICE_DEFAULTS.base_url),
            product=_get(prices, "product", str, "prices.", _PRICE_DEFAULTS.product),
            import_tariff=_get(
                prices, "import_tariff", str, "prices.", _PRICE_DEFAULTS.import_tariff
            ),
            export_tariff=_get(
                prices, "export_tariff", str, "prices.", _PRICE_DEFAULTS.export_tariff
            ),
            import_file=rel(_get(prices, "import_file", str, "prices.", None)),
            export_file=rel(_get(prices, "export_file", str, "prices.", None)),
            poll_minutes=_num(prices, "poll_minutes", "prices.", 30.0, 0.1),
            publish_local=_get(prices, "publish_local", str, "prices.", "16:00"),
            late_minutes=_num(prices, "late_minutes", "prices.", 0.0),
        ),
        simulation=SimulationConfig(
            start=start,
            speed=_num(sim, "speed", "simulation.", 3600.0, 0.001),
            hours=_num(sim, "hours", "simulation.", 24.0, 0.01),
        ),
        sites=sites,
    )


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    # Relative paths in the file are relative to the file's own directory.
    cfg = parse_config(doc, path.resolve().parent, env)
    return replace(cfg, source=path)
