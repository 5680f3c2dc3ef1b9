"""SignedConnectionsClient against a local HTTP server: signed as botocore signs, boto3's outcomes."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.client import BaseClient
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EndpointConnectionError

from parley import aws
from parley.notify import ManagementApiNotifier, PostOutcome, SignedConnectionsClient

CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
REGION = "eu-west-1"
# A real connection id ends in "=", and ids are opaque: anything must survive the path encoding.
CONNECTION = "L0SM9cOFvHcCIhw= a/b~"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


@dataclass
class Endpoint:
    """A stand-in @connections endpoint: records each request, answers from a script (then 200)."""

    url: str
    received: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    close_after_each: bool = False  # drop kept-alive connections without saying so (Connection: close)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            return self.script.pop(0) if self.script else (200, {}, b"")


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state: dict[str, Endpoint] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client's pool reuses one connection

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            ep = state["endpoint"]
            with ep.lock:
                ep.received.append(
                    Received(
                        self.command, self.path, dict(self.headers.items()), body, self.client_address[1]
                    )
                )
            status, headers, payload = ep.answer()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.close_connection = ep.close_after_each

        do_POST = do_DELETE = _any

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["endpoint"] = Endpoint(url=f"http://127.0.0.1:{server.server_port}/prod")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state["endpoint"]
    server.shutdown()
    server.server_close()


def signed_client(url: str) -> SignedConnectionsClient:
    return SignedConnectionsClient(
        url, credentials=CREDENTIALS, region=REGION, pool_size=4, connect_timeout_s=0.5, read_timeout_s=1.0
    )


def no_sleep(_: float) -> None:
    pass


def test_a_post_is_the_request_boto3_sends_and_its_signature_verifies_with_botocores_signer(
    endpoint: Endpoint,
) -> None:
    # GIVEN the same post sent by boto3's client and by the signed client
    boto = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint.url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS.access_key,
        aws_secret_access_key=CREDENTIALS.secret_key,
        aws_session_token=CREDENTIALS.token,
    )
    boto.post_to_connection(ConnectionId=CONNECTION, Data=b'{"n":1}')
    signed_client(endpoint.url).post_to_connection(ConnectionId=CONNECTION, Data=b'{"n":1}')
    theirs, ours = endpoint.received
    # THEN method, path, body and the signed parts of the header are boto3's
    assert (ours.method, ours.path, ours.body) == (theirs.method, theirs.path, theirs.body)
    assert ours.path == "/prod/@connections/L0SM9cOFvHcCIhw%3D%20a%2Fb~"
    scope = f"AKIDEXAMPLE/{ours.headers['X-Amz-Date'][:8]}/{REGION}/execute-api/aws4_request"
    auth = ours.headers["Authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={scope}, ")
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=" in auth
    assert ours.headers["X-Amz-Security-Token"] == "session-token"
    assert ours.headers["Host"] == theirs.headers["Host"]
    # AND a verifier recomputing the canonical request from what arrived, with botocore's own
    # signer, gets the same signature
    received = AWSRequest(
        method=ours.method,
        url=f"http://{ours.headers['Host']}{ours.path}",
        data=ours.body,
        headers={
            k: v
            for k, v in ours.headers.items()
            if k.lower() in ("host", "x-amz-date", "x-amz-security-token")
        },
    )
    received.context["timestamp"] = ours.headers["X-Amz-Date"]
    signer = SigV4Auth(CREDENTIALS, "execute-api", REGION)
    canonical = signer.canonical_request(received)
    assert canonical.splitlines()[1] == "/prod/%40connections/L0SM9cOFvHcCIhw%253D%2520a%252Fb~"
    expected = signer.signature(signer.string_to_sign(received, canonical), received)
    assert auth.endswith(f"Signature={expected}")


def test_a_tampered_body_does_not_verify(endpoint: Endpoint) -> None:
    # GIVEN a signed post WHEN its body is changed on the way THEN the signature no longer matches
    signed_client(endpoint.url).post_to_connection(ConnectionId="c1", Data=b"original")
    ours = endpoint.received[0]
    forged = AWSRequest(
        method="POST",
        url=f"http://{ours.headers['Host']}{ours.path}",
        data=b"forged",
        headers={
            k: v
            for k, v in ours.headers.items()
            if k.lower() in ("host", "x-amz-date", "x-amz-security-token")
        },
    )
    forged.context["timestamp"] = ours.headers["X-Amz-Date"]
    signer = SigV4Auth(CREDENTIALS, "execute-api", REGION)
    expected = signer.signature(signer.string_to_sign(forged, signer.canonical_request(forged)), forged)
    assert not ours.headers["Authorization"].endswith(f"Signature={expected}")


def test_gone_is_gone_and_closing_a_gone_connection_is_not_an_error(endpoint: Endpoint) -> None:
    # GIVEN an endpoint that no longer knows the connection (API Gateway: 410 GoneException)
    gone = (410, {"x-amzn-ErrorType": "GoneException:http://internal.amazon.com/"}, b'{"message":null}')
    endpoint.script = [gone, gone]
    notifier = ManagementApiNotifier(signed_client(endpoint.url), sleep=no_sleep)
    # WHEN a frame is posted and the connection closed
    outcome = notifier.post("c1", "{}")
    notifier.close("c1")
    # THEN the post is Gone at once (no retry) and the close is quietly done
    assert outcome is PostOutcome.GONE
    assert [r.method for r in endpoint.received] == ["POST", "DELETE"]


def test_throttling_is_retried_with_backoff_until_delivered(endpoint: Endpoint) -> None:
    # GIVEN an endpoint throttling the first two attempts
    throttled = (429, {"x-amzn-ErrorType": "LimitExceededException"}, b'{"message":"Rate exceeded"}')
    endpoint.script = [throttled, throttled]
    sleeps: list[float] = []
    notifier = ManagementApiNotifier(signed_client(endpoint.url), sleep=sleeps.append)
    # WHEN one frame is posted
    outcome = notifier.post("c1", '{"n":1}')
    # THEN it is retried twice, after two backoff sleeps, and arrives once
    assert outcome is PostOutcome.DELIVERED
    assert [r.body for r in endpoint.received] == [b'{"n":1}'] * 3
    assert len(sleeps) == 2


def test_throttled_on_every_attempt_is_throttled(endpoint: Endpoint) -> None:
    endpoint.script = [(429, {}, b"")] * 5
    outcome = ManagementApiNotifier(signed_client(endpoint.url), attempts=5, sleep=no_sleep).post("c1", "{}")
    assert outcome is PostOutcome.THROTTLED
    assert len(endpoint.received) == 5


@pytest.mark.parametrize(
    ("status", "headers", "body", "code"),
    [
        (410, {}, b"", "GoneException"),  # no header: the code follows the status
        (413, {}, b'{"message":"too big"}', "PayloadTooLargeException"),
        (403, {"x-amzn-ErrorType": "ForbiddenException"}, b"", "ForbiddenException"),
        (400, {}, b'{"__type":"com.amazon#BadRequestException","message":"no"}', "BadRequestException"),
        (500, {}, b"<html>oops</html>", "500"),
    ],
)
def test_an_http_error_is_the_clienterror_boto3_would_raise(
    endpoint: Endpoint, status: int, headers: dict[str, str], body: bytes, code: str
) -> None:
    endpoint.script = [(status, headers, body)]
    with pytest.raises(ClientError) as caught:
        signed_client(endpoint.url).post_to_connection(ConnectionId="c1", Data=b"{}")
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert caught.value.operation_name == "PostToConnection"


def test_bodies_arrive_once_each_and_in_order_over_one_pooled_connection(endpoint: Endpoint) -> None:
    # GIVEN a notifier on the signed client WHEN 50 frames are posted in turn
    notifier = ManagementApiNotifier(signed_client(endpoint.url), sleep=no_sleep)
    frames = [json.dumps({"n": i, "text": "héllo"}) for i in range(50)]
    outcomes = [notifier.post("c1", frame) for frame in frames]
    # THEN each is delivered, once, in order, UTF-8 encoded, on one kept-alive connection
    assert outcomes == [PostOutcome.DELIVERED] * 50
    assert [r.body for r in endpoint.received] == [f.encode("utf-8") for f in frames]
    assert len({r.client_port for r in endpoint.received}) == 1


def test_a_kept_alive_connection_the_server_dropped_is_replaced_and_nothing_is_posted_twice(
    endpoint: Endpoint,
) -> None:
    # GIVEN an endpoint that closes every connection after one answer, without a Connection: close
    endpoint.close_after_each = True
    notifier = ManagementApiNotifier(signed_client(endpoint.url), attempts=1, sleep=no_sleep)
    # WHEN frames are posted in turn, each on a connection the server has already closed
    outcomes = [notifier.post("c1", f'{{"n":{i}}}') for i in range(5)]
    # THEN each is delivered on the first attempt, once, in order, on a new connection each time
    assert outcomes == [PostOutcome.DELIVERED] * 5
    assert [r.body for r in endpoint.received] == [f'{{"n":{i}}}'.encode() for i in range(5)]
    assert len({r.client_port for r in endpoint.received}) == 5


def test_a_refused_connection_is_a_transient_error_then_a_failure() -> None:
    # GIVEN an endpoint nobody listens on
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = signed_client(f"http://127.0.0.1:{port}/prod")
    with pytest.raises(EndpointConnectionError):
        client.post_to_connection(ConnectionId="c1", Data=b"{}")
    sleeps: list[float] = []
    # THEN the notifier tries every attempt, then fails the post (its records are retried)
    assert (
        ManagementApiNotifier(client, attempts=3, sleep=sleeps.append).post("c1", "{}") is PostOutcome.FAILED
    )
    assert len(sleeps) == 2


@pytest.mark.parametrize("url", ["ftp://host/prod", "https:///prod", "https://host/prod?x=1"])
def test_an_endpoint_the_fast_path_cannot_send_to_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="@connections endpoint"):
        signed_client(url)


@pytest.fixture
def fresh_clients() -> Iterator[None]:
    aws.connections_client.cache_clear()
    yield
    aws.connections_client.cache_clear()


def test_the_fast_client_is_used_when_credentials_and_region_resolve(
    monkeypatch: pytest.MonkeyPatch, fresh_clients: None
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert isinstance(
        aws.connections_client("https://abc.execute-api.us-east-1.amazonaws.com/prod", 4),
        SignedConnectionsClient,
    )


@pytest.mark.parametrize("case", ["no credentials", "odd endpoint"])
def test_boto3_is_the_fallback_where_the_fast_path_cannot_be_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, fresh_clients: None, case: str
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    endpoint = "https://abc.execute-api.us-east-1.amazonaws.com/prod"
    if case == "no credentials":
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        monkeypatch.setattr("botocore.credentials.ContainerProvider.load", lambda self: None)
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        endpoint += "?stage=odd"
    client = aws.connections_client(endpoint, 4)
    assert isinstance(client, BaseClient)
    assert client.meta.service_model.service_name == "apigatewaymanagementapi"


def _self_signed(tmp_path: Any) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def test_an_https_endpoint_with_a_certificate_no_ca_vouches_for_is_refused(tmp_path: Any) -> None:
    import ssl

    # GIVEN an HTTPS endpoint presenting a self-signed certificate
    cert, key = _self_signed(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        client = signed_client(f"https://localhost:{server.server_port}/prod")
        # WHEN a frame is posted THEN the TLS handshake fails verification: nothing is sent
        with pytest.raises(EndpointConnectionError) as caught:
            client.post_to_connection(ConnectionId="c1", Data=b"{}")
        assert isinstance(caught.value.kwargs["error"], ssl.SSLCertVerificationError)
    finally:
        server.shutdown()
        server.server_close()
