"""A bounded schemathesis run against the served OpenAPI document, with every role's token and
none: no 5xx (bar /readyz's documented 503, which means "not ready" on purpose), and every
answer's status, content type and body inside the document."""

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from tests.api.conftest import ADMIN, APP, BILL, serve

ST = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")


@pytest.mark.parametrize("token", [ADMIN, APP, BILL, None], ids=["admin", "app", "billing", "none"])
async def test_the_api_keeps_to_its_openapi_document(tmp_path, token):
    if not Path(ST).exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    async with serve(tmp_path, tmp_path / "f.sqlite", 1 << 20) as (http, _service):
        url = str(http._base_url).rstrip("/")
        args = [ST, "run", f"{url}/api/v1/openapi.json", "-n", "25", "--seed", "7",
                "--checks", "not_a_server_error,status_code_conformance,"
                            "response_schema_conformance,content_type_conformance",
                "--phases", "examples,coverage,fuzzing", "--request-timeout", "10",
                "--exclude-path", "/readyz"]  # fmt: skip
        if token is not None:
            args += ["-H", f"Authorization: Bearer {token}"]
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,  # its own example database lands there, not in the checkout
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 240)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    assert "generated" in text  # it ran cases, not nothing
