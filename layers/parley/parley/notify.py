"""Pushing frames to connections through the API Gateway Management API (`@connections`)."""

from __future__ import annotations

import http.client
import json
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.httpsession import get_cert_path
from botocore.utils import percent_encode

if TYPE_CHECKING:
    from botocore.credentials import Credentials
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient


class PostOutcome(Enum):
    DELIVERED = "delivered"
    GONE = "gone"  # the connection no longer exists: clean it up, not a failure
    THROTTLED = "throttled"  # still throttled after every retry: a failure
    FAILED = "failed"


class Notifier(Protocol):
    def post(self, connection_id: str, data: str) -> PostOutcome: ...

    def close(self, connection_id: str) -> None: ...


# The connection to the endpoint failed or dropped: worth another attempt of this one post, rather than
# failing the post and with it the stream records it carries (Lambda would re-send the whole rest of
# the batch). A read timeout may follow a post that did arrive; events carry ids, clients drop repeats.
_TRANSIENT = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)
_THROTTLED = ("LimitExceededException", "TooManyRequestsException", "ThrottlingException")


class ConnectionsClient(Protocol):
    """The two `@connections` calls Parley makes, as boto3's `apigatewaymanagementapi` client has them."""

    def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> Any: ...

    def delete_connection(self, *, ConnectionId: str) -> Any: ...


SIGNING_NAME = "execute-api"  # what botocore signs apigatewaymanagementapi requests for
_DEFAULT_PORTS = {"http": 80, "https": 443}
# What API Gateway answers without an x-amzn-ErrorType header, by status.
_STATUS_CODES = {
    403: "ForbiddenException",
    410: "GoneException",
    413: "PayloadTooLargeException",
    429: "LimitExceededException",
}


class _OneWrite:
    """http.client sends the header block and the body in two system calls; one is enough.

    The override keeps `_send_output`'s signature (the same from Python 3.6 to 3.13) and hands any
    other body (chunked, file-like) to http.client unchanged.
    """

    _buffer: list[bytes]
    if TYPE_CHECKING:  # http.client.HTTPConnection's, which must stay first in the MRO

        def send(self, data: bytes) -> None: ...

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if isinstance(message_body, bytes) and not encode_chunked:
            self._buffer.extend((b"", message_body))
            message = b"\r\n".join(self._buffer)
            del self._buffer[:]
            self.send(message)
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


class _HTTPConnection(_OneWrite, http.client.HTTPConnection):  # type: ignore[misc]
    pass


class _HTTPSConnection(_OneWrite, http.client.HTTPSConnection):  # type: ignore[misc]
    pass


class SignedConnectionsClient:
    """`post_to_connection` and `delete_connection` without botocore's request pipeline.

    The request is the one boto3 sends (same path encoding, signed by botocore's own `SigV4Auth` for
    `execute-api`, TLS verified against botocore's CA bundle), sent on a kept-alive connection of the
    calling thread (fan-out posts from a pool of threads: one connection each, reused from post to
    post). Errors come back as boto3's would: an HTTP error as `ClientError` with API Gateway's code
    (`GoneException`, `LimitExceededException`...), a failed connection as botocore's connection
    errors, so `ManagementApiNotifier`'s retry policy applies unchanged. Measured in
    `python -m bench.poster`: about a third of boto3's client CPU per post (urllib3's `urlopen` alone
    costs about as much as this whole client, which is why it is not used here).
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        credentials: Credentials,
        region: str,
        pool_size: int,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"not an @connections endpoint URL: {endpoint_url!r}")
        self.endpoint_url = endpoint_url
        self._credentials = credentials
        self._region = region
        self._https = parts.scheme == "https"
        self._hostname = parts.hostname
        self._port = parts.port or _DEFAULT_PORTS[parts.scheme]
        # Signed as botocore signs it: the default port is not part of the host.
        self._host = parts.hostname if self._port == _DEFAULT_PORTS[parts.scheme] else parts.netloc
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path.rstrip("/") + "/@connections/"
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._tls = ssl.create_default_context(cafile=get_cert_path(True)) if self._https else None
        self.pool_size = pool_size  # one connection per posting thread, at most this many threads
        self._local = threading.local()

    def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> None:
        self._send("POST", ConnectionId, Data, "PostToConnection")

    def delete_connection(self, *, ConnectionId: str) -> None:
        self._send("DELETE", ConnectionId, b"", "DeleteConnection")

    def _send(self, method: str, connection_id: str, body: bytes, operation: str) -> None:
        path = self._prefix + percent_encode(connection_id)
        request = AWSRequest(method=method, url=self._origin + path, data=body, headers={"Host": self._host})
        # Frozen per request: refreshable credentials (a role's) stay valid across a long container.
        SigV4Auth(self._credentials.get_frozen_credentials(), SIGNING_NAME, self._region).add_auth(request)
        headers = dict(request.headers.items())
        reused = getattr(self._local, "connection", None) is not None
        try:
            status, response_headers, data = self._exchange(method, path, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise ConnectionClosedError(endpoint_url=self.endpoint_url) from None
            # A kept-alive connection the server had closed meanwhile: once more, on a new one.
            status, response_headers, data = self._exchange(method, path, body, headers)
        if 200 <= status < 300:
            return
        raise ClientError(_error_response(status, response_headers, data), operation)  # type: ignore[arg-type]

    def _exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        connection = self._connection()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self._drop()
            raise
        except TimeoutError as exc:
            self._drop()
            raise ReadTimeoutError(endpoint_url=self.endpoint_url, error=exc) from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise ConnectionClosedError(endpoint_url=self.endpoint_url, error=exc) from exc
        if response.will_close:
            self._drop()
        return response.status, response.headers, data

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        if self._tls is not None:
            connection = _HTTPSConnection(
                self._hostname, self._port, timeout=self._connect_timeout_s, context=self._tls
            )
        else:
            connection = _HTTPConnection(self._hostname, self._port, timeout=self._connect_timeout_s)
        try:
            connection.connect()
        except TimeoutError as exc:
            raise ConnectTimeoutError(endpoint_url=self.endpoint_url, error=exc) from exc
        except OSError as exc:
            raise EndpointConnectionError(endpoint_url=self.endpoint_url, error=exc) from exc
        assert connection.sock is not None
        connection.sock.settimeout(self._read_timeout_s)
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()


def _error_response(status: int, headers: http.client.HTTPMessage, data: bytes) -> dict[str, Any]:
    """The error as botocore's rest-json parser reports it: the code from x-amzn-ErrorType or the body."""
    code = (headers.get("x-amzn-ErrorType") or "").split(":", 1)[0]
    message = ""
    try:
        body = json.loads(data or b"{}")
    except ValueError:
        body = {}
    if isinstance(body, dict):
        code = code or str(body.get("__type") or body.get("code") or "").rsplit("#", 1)[-1]
        message = str(body.get("message") or body.get("Message") or "")
    code = code or _STATUS_CODES.get(status, str(status))
    return {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": dict(headers.items())},
    }


class ManagementApiNotifier:
    """`post_to_connection` with Parley's retry policy: throttling and transient connection errors back
    off (capped, full jitter) and try again; Gone and every other error answer at once."""

    def __init__(
        self,
        client: ApiGatewayManagementApiClient | ConnectionsClient,
        *,
        attempts: int = 5,
        base_delay_s: float = 0.05,
        max_delay_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._attempts = attempts
        self._base = base_delay_s
        self._cap = max_delay_s
        self._sleep = sleep

    def post(self, connection_id: str, data: str) -> PostOutcome:
        payload = data.encode("utf-8")
        outcome = PostOutcome.THROTTLED
        for attempt in range(self._attempts):
            try:
                self._client.post_to_connection(ConnectionId=connection_id, Data=payload)
                return PostOutcome.DELIVERED
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "GoneException":
                    return PostOutcome.GONE
                if code not in _THROTTLED:
                    return PostOutcome.FAILED
                outcome = PostOutcome.THROTTLED
            except _TRANSIENT:
                outcome = PostOutcome.FAILED
            except BotoCoreError:
                return PostOutcome.FAILED
            if attempt + 1 < self._attempts:
                # "full jitter" spreads the retries of concurrent posts instead of synchronising them
                self._sleep(random.uniform(0, min(self._cap, self._base * 2**attempt)))  # noqa: S311
        return outcome

    def worst_case_s(self, attempt_s: float) -> float:
        """The longest one post can take when each attempt takes `attempt_s` (a timeout)."""
        sleeps = sum(min(self._cap, self._base * 2.0**i) for i in range(self._attempts - 1))
        return self._attempts * attempt_s + sleeps

    def close(self, connection_id: str) -> None:
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") != "GoneException":
                raise
