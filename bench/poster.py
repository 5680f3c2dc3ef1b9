"""Client CPU per `@connections` post: boto3's `post_to_connection` against Parley's signed client.

`python -m bench.poster [--posts N] [--rounds R]` starts a keep-alive HTTP server in another process
(so its CPU is not counted), then alternates rounds of N posts through each client in this process
and reports the median CPU (process time) per post of each, and the ratio. Same run, same machine.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import Credentials

from bench.templates import ROOT

sys.path.insert(0, str(ROOT / "layers" / "parley"))  # the layer, as Lambda puts it on the path
from parley.notify import ManagementApiNotifier, SignedConnectionsClient

_SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_port, flush=True)
s.serve_forever()
"""
FRAME = json.dumps({"type": "message", "channel": "general", "text": "x" * 120, "id": "17953161230910417"})


def _cpu_per_post_ms(post: Any, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        post()
    return (time.process_time() - start) / n * 1000


def measure(posts: int, rounds: int) -> dict[str, Any]:
    """Median client CPU per post of each client over alternating rounds, and boto3 / signed."""
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/prod"
        boto = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            config=Config(retries={"mode": "standard", "max_attempts": 1}, max_pool_connections=4),
        )
        signed = SignedConnectionsClient(
            url,
            credentials=Credentials("testing", "testing", "testing"),
            region="us-east-1",
            pool_size=4,
            connect_timeout_s=0.5,
            read_timeout_s=1.0,
        )
        clients = {"boto3": ManagementApiNotifier(boto), "signed": ManagementApiNotifier(signed)}
        for notifier in clients.values():  # warm: connections open, lazy imports done
            for _ in range(50):
                notifier.post("abc123=", FRAME)
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(rounds):
            for name, notifier in clients.items():
                post = functools.partial(notifier.post, "abc123=", FRAME)
                samples[name].append(_cpu_per_post_ms(post, posts))
    finally:
        server.terminate()
        server.wait()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "cpu_ms_per_post": medians,
        "ratio_boto3_over_signed": medians["boto3"] / medians["signed"],
        "posts_per_round": posts,
        "rounds": rounds,
        "load": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    opts = parser.parse_args()
    print(json.dumps(measure(opts.posts, opts.rounds)))


if __name__ == "__main__":
    main()
