import copy
from pathlib import Path

import pytest

from flexd.config import ConfigError, hash_token, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]

BASE = {
    "daemon": {"database": "x.sqlite"},
    "api": {"tokens": [{"name": "a", "role": "app", "account": "acc", "token_env": "TOK"}]},
    "sites": [
        {
            "id": "s1",
            "meter": "m1",
            "tariff": "io-go",
            "devices": [
                {"id": "bat", "brand": "givenergy", "host": "127.0.0.1", "port": 8899},
                {"id": "car", "brand": "ocpp", "charge_point_id": "CP1",
                 "ev": {"capacity_kwh": 64}, "preferences": {"weekday_ready_by": "06:30"}},
            ],
        }
    ],
}  # fmt: skip
ENV = {"TOK": "s3cret"}


def parse(doc, env=ENV):
    return parse_config(doc, Path("/tmp"), env)


def test_parses_typed_objects_and_hashes_tokens():
    cfg = parse(BASE)
    assert cfg.database == Path("/tmp/x.sqlite")
    site = cfg.sites[0]
    bat, car = site.devices
    assert (bat.kind, car.kind) == ("inverter", "charger")
    assert car.ev is not None and car.ev.capacity_kwh == 64
    assert car.preferences.weekday_ready_by.strftime("%H:%M") == "06:30"
    assert car.options["charge_point_id"] == "CP1"
    assert cfg.api.tokens[0].sha256 == hash_token("s3cret")
    assert "s3cret" not in repr(cfg)


def _with(path, value):
    doc = copy.deepcopy(BASE)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("sites", 0, "devices", 0, "brand"), "acme", "sites[0].devices[0].brand"),
        (("sites", 0, "devices", 0, "password"), "inline!", "sites[0].devices[0].password"),
        (("sites", 0, "devices", 1, "preferences"), {"weekday_ready_by": "03:00"},
         "sites[0].devices[1].preferences.weekday_ready_by"),
        (("sites", 0, "devices", 1, "preferences"), {"target_soc_pct": 150},
         "sites[0].devices[1].preferences.target_soc_pct"),
        (("sites", 0, "meter"), "", "sites[0].meter"),
        (("sites", 0, "devices", 0, "poll_seconds"), -1, "sites[0].devices[0].poll_seconds"),
        (("api", "tokens", 0, "role"), "root", "api.tokens[0].role"),
        (("api", "tokens", 0, "token_env"), "MISSING", "api.tokens[0].token_env"),
        (("prices",), {"source": "ftp"}, "prices.source"),
        (("sites",), [], "sites"),
    ],
)  # fmt: skip
def test_errors_name_the_key_path(path, value, where):
    with pytest.raises(ConfigError) as info:
        parse(_with(path, value))
    assert info.value.path == where


def test_shipped_configs_load():
    for name in ("flexd.toml", "flexd-flux.toml"):
        cfg = load_config(REPO / "config" / name, env={})
        assert cfg.sites
