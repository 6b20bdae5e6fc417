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
    assert car.options.charge_point_id == "CP1"
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
    fleet = load_config(REPO / "config" / "fleet.toml", env={})
    assert fleet.fleet.enabled and not fleet.sites


@pytest.mark.parametrize(
    ("path", "value", "where", "reason"),
    [
        (("sites", 0, "devices", 1, "pol_seconds"), 30, "sites[0].devices[1].pol_seconds", "unknown key"),
        (("sites", 0, "devices", 0, "device_adress"), 17, "sites[0].devices[0].device_adress", "unknown key"),
        (("sites", 0, "devices", 0, "device_address"), "0x11", "sites[0].devices[0].device_address", "must be an integer"),
        (("sites", 0, "devices", 0, "max_charge_kw"), True, "sites[0].devices[0].max_charge_kw", "must be a number"),
        (("sites", 0, "devices", 0, "max_charge_kw"), float("nan"), "sites[0].devices[0].max_charge_kw", "must be a finite number"),
        (("sites", 0, "devices", 0, "charge_point_id"), "CP9", "sites[0].devices[0].charge_point_id", "unknown key"),
        (("sites", 0, "devices", 1, "csms_port"), 70000, "sites[0].devices[1].csms_port", "must be <= 65535"),
        (("sites", 0, "devices", 1, "ev"), {"capacity_kw": 60}, "sites[0].devices[1].ev.capacity_kw", "unknown key"),
        (("sites", 0, "devices", 1, "ev"), {"plug_in_local": "6pm"}, "sites[0].devices[1].ev.plug_in_local", "must be a local time HH:MM"),
        (("sites", 0, "devices", 1, "token_env"), "TOK", "sites[0].devices[1].token_env", "unknown key"),
        (("sites", 0, "tarif"), "io-go", "sites[0].tarif", "unknown key"),
        (("daemon", "cycle_second"), 30, "daemon.cycle_second", "unknown key"),
        (("daemon", "cycle_seconds"), float("nan"), "daemon.cycle_seconds", "must be a finite number"),
        (("daemon", "planner_processes"), -1, "daemon.planner_processes", "must be within 0..256 (0: solve in threads)"),
        (("daemon", "planner_processes"), 1.5, "daemon.planner_processes", "must be int"),
        (("api", "prot"), 80, "api.prot", "unknown key"),
        (("mqtt",), {"hots": "x"}, "mqtt.hots", "unknown key"),
        (("prices",), {"sorce": "url"}, "prices.sorce", "unknown key"),
        (("simulaton",), {}, "simulaton", "unknown key"),
    ],
)  # fmt: skip
def test_unknown_keys_and_wrong_types_name_the_key_path(path, value, where, reason):
    with pytest.raises(ConfigError) as info:
        parse(_with(path, value))
    assert (info.value.path, info.value.reason) == (where, reason)


def test_brand_options_are_typed_per_brand():
    doc = _with(("sites", 0, "devices", 0, "device_address"), 0x32)
    bat, car = parse(doc).sites[0].devices
    assert type(bat.options).__name__ == "GivEnergyOptions" and bat.options.device_address == 0x32
    assert type(car.options).__name__ == "OcppOptions" and car.options.csms_port == 9000


def test_cli_exits_2_with_the_file_and_key_path(tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[[sites]]\nid = "s"\nmeter = "m"\ntariff = "io-go"\n'
        '[[sites.devices]]\nid = "b"\nbrand = "givenergy"\n'
        '[[sites.devices]]\nid = "c"\nbrand = "ocpp"\npol_seconds = 3\n'
    )
    r = subprocess.run([sys.executable, "-m", "flexd", "run", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"flexd run: {cfg}: sites[0].devices[1].pol_seconds: unknown key"
    ]
