"""moto's own CORS, with and without `browser_guard.disable_global_cors()`, each in a fresh interpreter
(moto reads MOTO_DISABLE_GLOBAL_CORS once, at import, so one process cannot show both)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]

PROBE = """
import json, sys
from werkzeug.test import Client
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
if sys.argv[1] == "disabled":
    from ws_emulator.aws.browser_guard import disable_global_cors
    disable_global_cors()
client = Client(DomainDispatcherApplication(create_backend_app))
signed = "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=x"
headers = {"Origin": "http://evil.example", "Host": "127.0.0.1:5000", "Authorization": signed}
call = client.post("/", headers={**headers, "X-Amz-Target": "AmazonSSM.DescribeParameters",
                                 "Content-Type": "application/x-amz-json-1.1"}, data=b"{}")
preflight = client.options("/", headers={**headers, "Access-Control-Request-Method": "POST"})
print(json.dumps([call.headers.get("Access-Control-Allow-Origin"),
                  preflight.headers.get("Access-Control-Allow-Origin")]))
"""


def probe(mode: str) -> list[str | None]:
    env = {k: v for k, v in os.environ.items() if k != "MOTO_DISABLE_GLOBAL_CORS"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=True,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("mode", "granted"), [("default", ["http://evil.example"] * 2), ("disabled", [None, None])]
)
def test_disable_global_cors_stops_moto_granting_any_origin(mode, granted):
    # Given moto's service apps as its server builds them
    # When a page's SSM call and a preflight arrive, then moto grants the page's origin unless disabled
    assert probe(mode) == granted
