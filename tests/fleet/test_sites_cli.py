"""``flexd sites import|list`` and the [fleet] config: contracts and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flexd.config import ConfigError, parse_config
from tests.pg import pg_database

SITE = """
[[sites]]
id = "{id}"
meter = "M-{id}"
tariff = "io-go"
[[sites.devices]]
id = "{dev}"
brand = "givenergy"
host = "127.0.0.1"
port = 8899
"""


def flexd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flexd", *args], capture_output=True,
                          text=True, timeout=60)  # fmt: skip


@pytest.fixture
async def url():
    async with pg_database() as u:
        yield u


async def test_import_adds_updates_and_lists(tmp_path: Path, url: str):
    f = tmp_path / "sites.toml"
    f.write_text(SITE.format(id="a", dev="a-inv") + SITE.format(id="b", dev="b-inv"))
    got = flexd("sites", "import", str(f), "--database", url)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"added": 2, "updated": 0, "unchanged": 0}
    f.write_text(SITE.format(id="a", dev="a-inv") + SITE.format(id="b", dev="b-inv2"))
    got = flexd("sites", "import", str(f), "--database", url)
    assert json.loads(got.stdout) == {"added": 0, "updated": 1, "unchanged": 1}
    listed = json.loads(flexd("sites", "list", "--database", url).stdout)
    assert [(s["id"], s["owner"], s["epoch"]) for s in listed["sites"]] == [
        ("a", None, 0), ("b", None, 0)]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("[[sites]]\nid = 'a'\n", "sites[0].meter: is required"),
        ("[[sites]\n", "not valid TOML"),
        ("[daemon]\n" + SITE.format(id="a", dev="d"), "daemon: a sites file holds [[sites]]"),
        (SITE.format(id="a", dev="d") + SITE.format(id="b", dev="d"), "device ids must be unique"),
        (SITE.format(id="a", dev="d").replace("io-go", "nope"), "sites[0].tariff"),
    ],
)
async def test_bad_sites_files_exit_2_with_one_line(tmp_path: Path, url: str, body, says):
    f = tmp_path / "sites.toml"
    f.write_text(body)
    got = flexd("sites", "import", str(f), "--database", url)
    assert got.returncode == 2
    assert got.stderr.count("\n") == 1 and "Traceback" not in got.stderr
    assert says in got.stderr


async def test_a_device_of_another_stored_site_is_refused_and_nothing_changes(tmp_path, url):
    f = tmp_path / "sites.toml"
    f.write_text(SITE.format(id="a", dev="shared"))
    assert flexd("sites", "import", str(f), "--database", url).returncode == 0
    f.write_text(SITE.format(id="z", dev="new") + SITE.format(id="b", dev="shared"))
    got = flexd("sites", "import", str(f), "--database", url)
    assert got.returncode == 2 and "already belongs to stored site a" in got.stderr
    listed = json.loads(flexd("sites", "list", "--database", url).stdout)
    assert [s["id"] for s in listed["sites"]] == ["a"]  # z was not stored either


def test_sites_need_postgresql(tmp_path: Path):
    f = tmp_path / "sites.toml"
    f.write_text(SITE.format(id="a", dev="d"))
    got = flexd("sites", "import", str(f), "--database", str(tmp_path / "x.sqlite"))
    assert got.returncode == 2 and "postgresql://" in got.stderr


def test_fleet_config_rules(tmp_path: Path):
    base = {"daemon": {"database": "postgresql://u@127.0.0.1/db"}, "fleet": {"enabled": True}}
    cfg = parse_config(base, tmp_path, env={})
    assert cfg.fleet.enabled and cfg.fleet.lease_seconds == 30 and cfg.sites == ()
    with pytest.raises(ConfigError, match=r"fleet\.enabled: a fleet needs PostgreSQL"):
        parse_config({**base, "daemon": {"database": "x.sqlite"}}, tmp_path, env={})
    site = {"id": "a", "meter": "M", "tariff": "io-go"}
    with pytest.raises(ConfigError, match="flexd sites import"):
        parse_config({**base, "sites": [site]}, tmp_path, env={})
    with pytest.raises(ConfigError, match=r"fleet\.max_sites"):
        parse_config({**base, "fleet": {"enabled": True, "max_sites": 0}}, tmp_path, env={})
    with pytest.raises(ConfigError, match=r"fleet\.lease_seconds"):
        parse_config({**base, "fleet": {"enabled": True, "lease_seconds": 0.1}}, tmp_path, env={})
