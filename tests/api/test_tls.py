"""The API over TLS with the configured certificate and key, from the config file's keys."""

import ssl

import aiohttp
import pytest

from core.clock import ManualClock
from flexd.api.app import bound_port, start_api
from flexd.config import ConfigError, hash_token, parse_config
from flexd.control.runtime import build_sites
from flexd.service import Service
from flexd.storage import Storage
from tests.api.conftest import ADMIN, NOW, _site, auth
from tests.conftest import self_signed


async def test_api_serves_https_with_the_configured_certificate(tmp_path):
    cert, _ = self_signed(tmp_path)
    doc = {
        "daemon": {"database": str(tmp_path / "f.sqlite")},
        "api": {"port": 0, "tls_cert": "cert.pem", "tls_key": "key.pem",  # relative to the file
                "tokens": [{"name": "admin", "role": "admin", "sha256": hash_token(ADMIN)}]},
        "sites": [_site("home", "A1", "M1")],
    }  # fmt: skip
    cfg = parse_config(doc, tmp_path, env={})
    storage = await Storage.open(cfg.database)
    service = Service(cfg, storage, ManualClock(NOW), build_sites(cfg.sites))
    runner = await start_api(service, cfg.api)
    port = bound_port(runner)
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://127.0.0.1:{port}/healthz", ssl=trust) as r:
                assert r.status == 200
            async with http.get(f"https://127.0.0.1:{port}/api/v1/devices", ssl=trust,
                                headers=auth(ADMIN)) as r:  # fmt: skip
                assert r.status == 200
            with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    await r.read()
            with pytest.raises(aiohttp.ClientConnectorCertificateError):  # an untrusted cert
                async with http.get(f"https://127.0.0.1:{port}/healthz") as r:
                    await r.read()
    finally:
        await runner.cleanup()
        await storage.close()


def test_cert_without_key_is_a_config_error(tmp_path):
    doc = {"daemon": {"database": "f.sqlite"}, "api": {"tls_cert": "cert.pem"},
           "sites": [_site("home", "A1", "M1")]}  # fmt: skip
    with pytest.raises(ConfigError, match="tls_key"):
        parse_config(doc, tmp_path, env={})
