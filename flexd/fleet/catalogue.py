"""Sites as data: a fleet's sites and their devices live in PostgreSQL, not in config files.

``flexd sites import sites.toml`` stores each ``[[sites]]`` table as it is written (secrets stay
``*_env``/``*_file`` references, resolved by each instance from its own environment), after
checking it exactly as a config file's site is checked. An instance parses a site's stored table
when it claims the site, and reads every site to route API requests for any of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flexd.config import ConfigError, SiteConfig
from flexd.config.parse import parse_site, read_toml
from flexd.storage import Storage


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int


def read_sites_file(path: Path, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The ``[[sites]]`` tables of a sites.toml, each checked (ConfigError names the key)."""
    env = os.environ if env is None else env
    doc = read_toml(path)
    extra = set(doc) - {"sites"}
    if extra:
        raise ConfigError(sorted(extra)[0], "a sites file holds [[sites]] tables only", str(path))
    raw = doc.get("sites")
    if not isinstance(raw, list) or not raw:
        raise ConfigError("sites", "at least one [[sites]] table is required", str(path))
    parsed: list[SiteConfig] = []
    for i, site in enumerate(raw):
        try:
            parsed.append(parse_site(site, f"sites[{i}].", env))
        except ConfigError as exc:
            raise ConfigError(exc.path, exc.reason, str(path)) from None
    _unique(parsed, str(path))
    return [dict(s) for s in raw]


def _unique(sites: list[SiteConfig], file: str | None = None) -> None:
    if len({s.id for s in sites}) != len(sites):
        raise ConfigError("sites", "site ids must be unique", file)
    devices = [d.id for s in sites for d in s.devices]
    if len(set(devices)) != len(devices):
        raise ConfigError("sites", "device ids must be unique across sites", file)


async def import_sites(storage: Storage, docs: list[dict[str, Any]]) -> ImportResult:
    """Add or update sites in one transaction. A device id that another stored site already
    uses is refused (ConfigError), and then nothing is stored."""
    added = updated = unchanged = 0
    async with storage.driver.transaction() as tx:
        await tx.lock("flexd:fleet-import")  # two imports at once: one after the other
        rows = await tx.fetchall("SELECT id, doc FROM fleet_sites")
        stored = {str(r[0]): str(r[1]) for r in rows}
        owner_of: dict[str, str] = {}
        for sid, text in stored.items():
            for dev in json.loads(text).get("devices", []):
                owner_of[str(dev.get("id"))] = sid
        for i, doc in enumerate(docs):
            for dev in doc.get("devices", []):
                other = owner_of.get(str(dev.get("id")))
                if other is not None and other != doc["id"]:
                    raise ConfigError(f"sites[{i}].devices", f"device {dev.get('id')} "
                                      f"already belongs to stored site {other}")  # fmt: skip
            text = json.dumps(doc, sort_keys=True, default=str)
            prev = stored.get(doc["id"])
            if prev == text:
                unchanged += 1
                continue
            await tx.execute(
                "INSERT INTO fleet_sites (id, account, meter, doc, imported_at) "
                "VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP) ON CONFLICT (id) DO UPDATE SET "
                "account = excluded.account, meter = excluded.meter, doc = excluded.doc, "
                "imported_at = excluded.imported_at, version = fleet_sites.version + 1",
                (doc["id"], doc.get("account", doc["id"]), doc["meter"], text),
            )
            if prev is None:
                added += 1
            else:
                updated += 1
        if added or updated:
            await tx.execute(
                "UPDATE fleet_catalogue SET version = version + 1, "
                "sites = (SELECT COUNT(*) FROM fleet_sites) WHERE id = 1"
            )
    return ImportResult(added, updated, unchanged)


async def load_sites(
    storage: Storage, env: Mapping[str, str] | None = None
) -> dict[str, tuple[SiteConfig, int]]:
    """Every stored site, parsed with this instance's environment: id -> (config, version).
    A site that no longer parses here (a secret's variable unset) is left out and logged by
    the caller through the returned gaps."""
    env = os.environ if env is None else env
    rows = await storage.query("SELECT id, doc, version FROM fleet_sites ORDER BY id")
    out: dict[str, tuple[SiteConfig, int]] = {}
    for sid, text, version in rows:
        out[str(sid)] = (parse_site(json.loads(text), f"site {sid}: ", env), int(version))
    return out
