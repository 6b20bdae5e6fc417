"""flexd.toml parsed once at start-up into the frozen dataclasses of :mod:`flexd.config.model`.

Errors raise :class:`ConfigError` naming the key path and the reason; an unknown key is an error.
Secrets are never inline: a key ending in ``_env`` names an environment variable and one ending
in ``_file`` a file; the loader resolves them once.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, time
from pathlib import Path
from typing import Any

from flexd.config.devices import parse_device
from flexd.config.model import (
    ROLES,
    ApiConfig,
    Config,
    ConfigError,
    FleetConfig,
    MqttConfig,
    PriceConfig,
    SimulationConfig,
    SiteConfig,
    TokenConfig,
    hash_token,
)
from flexd.config.values import get, known, num, secret, secret_keys, table
from flexd.storage.store import is_url
from rating.model import RatingInputError
from rating.tariff import load_tariff

SECTIONS = ("daemon", "api", "mqtt", "prices", "simulation", "fleet", "sites")
SITE_KEYS = ("id", "account", "meter", "tariff", "import_kw", "export_kw", "reserve_pct",
             "replan_soc_margin_pct", "stability_threshold_p", "devices")  # fmt: skip
_PRICE_DEFAULTS = PriceConfig()


def parse_site(doc: Any, path: str, env: Mapping[str, str]) -> SiteConfig:
    """One ``[[sites]]`` table (a config file's, or a fleet's imported from sites.toml)."""
    return _site(doc, path, env)


def _site(doc: Any, path: str, env: Mapping[str, str]) -> SiteConfig:
    if not isinstance(doc, Mapping):
        raise ConfigError(path.rstrip("."), "must be a table")
    known(doc, SITE_KEYS, path)
    for key in ("id", "meter", "tariff"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise ConfigError(f"{path}{key}", "is required (a string)")
    devices = doc.get("devices", [])
    if not isinstance(devices, list):
        raise ConfigError(f"{path}devices", "must be an array of tables")
    parsed = tuple(parse_device(d, f"{path}devices[{i}].", env) for i, d in enumerate(devices))
    ids = [d.id for d in parsed]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}devices", "device ids must be unique")
    try:  # a tariff that cannot load fails here, by key path, not later in the daemon
        load_tariff(doc["tariff"])
    except RatingInputError as exc:
        raise ConfigError(f"{path}tariff", str(exc)) from None
    return SiteConfig(
        id=doc["id"],
        account=get(doc, "account", str, path, doc["id"]),
        meter=doc["meter"],
        tariff=doc["tariff"],
        import_kw=num(doc, "import_kw", path, 15.0, 0.1),
        export_kw=num(doc, "export_kw", path, 5.0),
        reserve_pct=num(doc, "reserve_pct", path, 10.0),
        replan_soc_margin_pct=num(doc, "replan_soc_margin_pct", path, 5.0),
        stability_threshold_p=num(doc, "stability_threshold_p", path, 1.0),
        devices=parsed,
    )


def _tokens(doc: Mapping[str, Any], env: Mapping[str, str]) -> tuple[TokenConfig, ...]:
    raw = doc.get("tokens", [])
    if not isinstance(raw, list):
        raise ConfigError("api.tokens", "must be an array of tables")
    out = []
    for i, t in enumerate(raw):
        path = f"api.tokens[{i}]."
        if not isinstance(t, Mapping):
            raise ConfigError(path.rstrip("."), "must be a table")
        known(t, {"name", "role", "account", "sha256", *secret_keys(["token"])}, path)
        name = get(t, "name", str, path, f"token{i}")
        role = get(t, "role", str, path, None)
        if role not in ROLES:
            raise ConfigError(f"{path}role", f"must be one of {', '.join(ROLES)}")
        account = get(t, "account", str, path, None)
        if role == "app" and not account:
            raise ConfigError(f"{path}account", "an app token is bound to one account")
        digest = get(t, "sha256", str, path, None)
        if digest is None:
            token = secret(t, "token", path, env)
            if token is None:
                raise ConfigError(path.rstrip("."), "needs sha256, token_env or token_file")
            digest = hash_token(token)
        elif len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
            raise ConfigError(f"{path}sha256", "must be a hex SHA-256 digest")
        out.append(TokenConfig(name=name, role=role, sha256=digest.lower(), account=account))
    return tuple(out)


def _api(api: Mapping[str, Any], env: Mapping[str, str], rel: Any) -> ApiConfig:
    known(api, ("enabled", "host", "port", "tls_cert", "tls_key", "max_body_bytes", "tokens"),
          "api.")  # fmt: skip
    cfg = ApiConfig(
        enabled=bool(get(api, "enabled", bool, "api.", True)),
        host=get(api, "host", str, "api.", "127.0.0.1"),
        port=int(get(api, "port", int, "api.", 8080)),
        tls_cert=rel(get(api, "tls_cert", str, "api.", None)),
        tls_key=rel(get(api, "tls_key", str, "api.", None)),
        max_body_bytes=int(get(api, "max_body_bytes", int, "api.", 1_048_576)),
        tokens=_tokens(api, env),
    )
    if (cfg.tls_cert is None) != (cfg.tls_key is None):
        raise ConfigError("api.tls_key", "tls_cert and tls_key go together")
    if not 0 <= cfg.port <= 65535:
        raise ConfigError("api.port", "must be within 0..65535")
    if cfg.max_body_bytes < 1:
        raise ConfigError("api.max_body_bytes", "must be >= 1")
    for key in ("tls_cert", "tls_key"):
        path = getattr(cfg, key)
        if path is not None and not path.is_file():
            raise ConfigError(f"api.{key}", f"{path}: no such file")
    return cfg


def _mqtt(mqtt: Mapping[str, Any], env: Mapping[str, str], rel: Any) -> MqttConfig:
    known(mqtt, {"enabled", "host", "port", "tls", "tls_ca_file", "ha_discovery", "prefix",
                 *secret_keys(["username", "password"])}, "mqtt.")  # fmt: skip
    if not 1 <= int(get(mqtt, "port", int, "mqtt.", 1883)) <= 65535:
        raise ConfigError("mqtt.port", "must be within 1..65535")
    return MqttConfig(
        enabled=bool(get(mqtt, "enabled", bool, "mqtt.", False)),
        host=get(mqtt, "host", str, "mqtt.", "127.0.0.1"),
        port=int(get(mqtt, "port", int, "mqtt.", 1883)),
        username=secret(mqtt, "username", "mqtt.", env),
        password=secret(mqtt, "password", "mqtt.", env),
        tls=bool(get(mqtt, "tls", bool, "mqtt.", False)),
        tls_ca_file=rel(get(mqtt, "tls_ca_file", str, "mqtt.", None)),
        ha_discovery=bool(get(mqtt, "ha_discovery", bool, "mqtt.", True)),
        prefix=get(mqtt, "prefix", str, "mqtt.", "flexd"),
    )


def _prices(prices: Mapping[str, Any], rel: Any) -> PriceConfig:
    known(prices, ("source", "base_url", "product", "import_tariff", "export_tariff",
                   "import_file", "export_file", "poll_minutes", "publish_local",
                   "late_minutes", "payment_method"), "prices.")  # fmt: skip
    method = get(prices, "payment_method", str, "prices.", "DIRECT_DEBIT")
    if method not in ("DIRECT_DEBIT", "NON_DIRECT_DEBIT"):
        raise ConfigError("prices.payment_method", "must be DIRECT_DEBIT or NON_DIRECT_DEBIT")
    source = get(prices, "source", str, "prices.", "simulator")
    if source not in ("url", "file", "simulator"):
        raise ConfigError("prices.source", "must be url, file or simulator")
    d = _PRICE_DEFAULTS
    publish = get(prices, "publish_local", str, "prices.", "16:00")
    try:
        time.fromisoformat(publish)
    except ValueError:
        raise ConfigError("prices.publish_local", "must be a local time HH:MM") from None
    return PriceConfig(
        source=source,
        base_url=get(prices, "base_url", str, "prices.", d.base_url),
        product=get(prices, "product", str, "prices.", d.product),
        import_tariff=get(prices, "import_tariff", str, "prices.", d.import_tariff),
        export_tariff=get(prices, "export_tariff", str, "prices.", d.export_tariff),
        import_file=rel(get(prices, "import_file", str, "prices.", None)),
        export_file=rel(get(prices, "export_file", str, "prices.", None)),
        poll_minutes=num(prices, "poll_minutes", "prices.", 30.0, 0.1),
        publish_local=publish,
        late_minutes=num(prices, "late_minutes", "prices.", 0.0),
        payment_method=method,
    )


def _simulation(sim: Mapping[str, Any]) -> SimulationConfig:
    known(sim, ("start", "speed", "hours", "anchor_unix"), "simulation.")
    start = get(sim, "start", (str, datetime), "simulation.", None)
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start)
        except ValueError:
            raise ConfigError("simulation.start", "must be an ISO-8601 instant") from None
    if start is not None and start.tzinfo is None:
        raise ConfigError("simulation.start", "must carry an offset (Z or +01:00)")
    return SimulationConfig(
        start=start,
        speed=num(sim, "speed", "simulation.", 3600.0, 0.001),
        hours=num(sim, "hours", "simulation.", 24.0, 0.01),
        anchor_unix=num(sim, "anchor_unix", "simulation.", 0.0) if "anchor_unix" in sim else None,
    )


def _fleet(doc: Mapping[str, Any], db: Path | str) -> FleetConfig:
    known(doc, ("enabled", "instance_id", "lease_seconds", "max_sites"), "fleet.")
    cfg = FleetConfig(
        enabled=bool(get(doc, "enabled", bool, "fleet.", False)),
        instance_id=get(doc, "instance_id", str, "fleet.", None),
        # A command must fit in what is left of a lease (flexd.fleet.journal): below 3 s none
        # would ever be sent.
        lease_seconds=num(doc, "lease_seconds", "fleet.", 30.0, 3.0),
        max_sites=int(get(doc, "max_sites", int, "fleet.", 1000)),
    )
    if cfg.instance_id is not None and not 1 <= len(cfg.instance_id) <= 100:
        raise ConfigError("fleet.instance_id", "must be 1..100 characters")
    if not 1 <= cfg.max_sites <= 1_000_000:
        raise ConfigError("fleet.max_sites", "must be within 1..1000000")
    if cfg.enabled and not is_url(db):
        raise ConfigError("fleet.enabled", "a fleet needs PostgreSQL: daemon.database must be "
                          "a postgresql:// URL")  # fmt: skip
    return cfg


def database_target(value: str, base_dir: Path) -> Path | str:
    """A PostgreSQL URL as it is (its password never inline), else a SQLite file path."""
    if is_url(value):
        creds = value.split("://", 1)[1].split("@", 1)
        if len(creds) == 2 and ":" in creds[0]:
            raise ConfigError("daemon.database", "no password in the URL: use "
                              "database_password_env or database_password_file")  # fmt: skip
        return value
    if "://" in value:
        raise ConfigError("daemon.database", "must be a file path or a postgresql:// URL")
    p = Path(value)
    return p if p.is_absolute() else base_dir / p


def parse_config(
    doc: Mapping[str, Any], base_dir: Path, env: Mapping[str, str] | None = None
) -> Config:
    env = os.environ if env is None else env
    known(doc, SECTIONS, "")
    daemon = table(doc, "daemon", "")
    known(daemon, ("database", "log_format", "cycle_seconds", "planner_threads",
                   "planner_processes", "max_kwh_per_half_hour", "readings_window_months",
                   *secret_keys(["database_password"])), "daemon.")  # fmt: skip
    db = database_target(get(daemon, "database", str, "daemon.", "flexd.sqlite"), base_dir)

    def rel(p: str | None) -> Path | None:
        return None if p is None else (base_dir / p if not Path(p).is_absolute() else Path(p))

    fleet = _fleet(table(doc, "fleet", ""), db)
    sites_raw = doc.get("sites", [])
    if fleet.enabled:
        if sites_raw:
            raise ConfigError("sites", "a fleet instance reads its sites from the database: "
                              "import them with `flexd sites import`")  # fmt: skip
    elif not isinstance(sites_raw, list) or not sites_raw:
        raise ConfigError("sites", "at least one [[sites]] table is required")
    sites = tuple(_site(s, f"sites[{i}].", env) for i, s in enumerate(sites_raw))
    if len({s.id for s in sites}) != len(sites):
        raise ConfigError("sites", "site ids must be unique")
    all_dev = [d.id for s in sites for d in s.devices]
    if len(set(all_dev)) != len(all_dev):
        raise ConfigError("sites", "device ids must be unique across sites")
    if get(daemon, "readings_window_months", int, "daemon.", 24) < 0:
        raise ConfigError("daemon.readings_window_months", "must be >= 0 (0: no limit)")
    log_format = get(daemon, "log_format", str, "daemon.", "auto")
    if log_format not in ("auto", "json", "console"):
        raise ConfigError("daemon.log_format", "must be auto, json or console")
    return Config(
        database=db,
        database_password=secret(daemon, "database_password", "daemon.", env),
        log_format=log_format,
        cycle_seconds=num(daemon, "cycle_seconds", "daemon.", 300.0, 1.0),
        planner_threads=_threads(daemon),
        planner_processes=_processes(daemon),
        max_kwh_per_half_hour=num(daemon, "max_kwh_per_half_hour", "daemon.", 30.0, 0.001),
        readings_window_months=int(get(daemon, "readings_window_months", int, "daemon.", 24)),
        api=_api(table(doc, "api", ""), env, rel),
        mqtt=_mqtt(table(doc, "mqtt", ""), env, rel),
        prices=_prices(table(doc, "prices", ""), rel),
        simulation=_simulation(table(doc, "simulation", "")),
        fleet=fleet,
        sites=sites,
    )


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a table; ConfigError names the file when it is missing or not TOML."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    doc = read_toml(path)
    # Relative paths in the file are relative to the file's own directory.
    try:
        cfg = parse_config(doc, path.resolve().parent, env)
    except ConfigError as exc:  # name the file too: an operator may have several
        raise ConfigError(exc.path, exc.reason, file=str(path)) from None
    return replace(cfg, source=path)


def _processes(daemon: Mapping[str, Any]) -> int:
    value = get(daemon, "planner_processes", int, "daemon.", 0)
    if not 0 <= value <= 256:
        raise ConfigError("daemon.planner_processes",
                          "must be within 0..256 (0: solve in threads)")  # fmt: skip
    return int(value)


def _threads(daemon: Mapping[str, Any]) -> int:
    value = get(daemon, "planner_threads", int, "daemon.", 0)
    if not 0 <= value <= 256:
        raise ConfigError("daemon.planner_threads", "must be within 0..256 (0: one per core)")
    return int(value)
