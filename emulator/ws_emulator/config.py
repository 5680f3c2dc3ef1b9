"""The emulator's settings, validated once, with errors a person can act on."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from ws_emulator.errors import ConfigError
from ws_emulator.gateway import limits
from ws_emulator.gateway.devtokens import DEV_TOKEN_SECRET
from ws_emulator.gateway.origins import is_loopback_host, normalize_origin

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3001
LOCALSTACK = "localstack"


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Config:
    """Everything `ws-emulator serve` accepts; tests build one directly (use port 0 there)."""

    template: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # None: the WebSocket port + 1 (or an OS-chosen port when the WebSocket port is 0).
    management_port: int | None = None
    stage: str | None = None
    region: str = "us-east-1"
    stack_name: str = "local"
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    ssm_parameters: Mapping[str, str] = field(default_factory=dict)
    dynamodb_endpoint: str | None = None
    # Every AWS service at this URL instead of the embedded moto server ("localstack": find LocalStack).
    aws_endpoint: str | None = None
    idle_timeout_s: float = limits.IDLE_TIMEOUT_S
    max_connection_duration_s: float = limits.MAX_CONNECTION_DURATION_S
    ttl_sweep_interval_s: float = 1.0
    # None: a stream shard is read as soon as its table is written (embedded server); else every S s.
    stream_poll_interval_s: float | None = None
    shutdown_timeout_s: float = 30.0
    connect_rate: float = limits.CONNECT_RATE_PER_S
    frame_limit_bytes: int = limits.FRAME_LIMIT_BYTES
    message_limit_bytes: int = limits.MESSAGE_LIMIT_BYTES
    dev_token_secret: str | None = None
    dev_token_claims: Mapping[str, Any] = field(default_factory=dict)
    dev_users: tuple[str, ...] = ()
    # Served for plain HTTP GETs on the WebSocket port (index.html at `/`), e.g. a browser client.
    static_dir: Path | None = None
    # Share (0..1) of @connections POSTs answered 410 / 429 on purpose, to test clients' recovery.
    fault_post_gone_rate: float = 0.0
    fault_post_throttle_rate: float = 0.0
    # Share (0..1) of the functions' DynamoDB data-plane requests answered with a throttling error.
    fault_dynamodb_throttle_rate: float = 0.0
    # Share (0..1) of the functions' TransactWriteItems cancelled with a TransactionConflict reason.
    fault_transaction_conflict_rate: float = 0.0
    # Hot reload: watch CodeUri folders, layers and the template (off with --no-watch).
    watch: bool = True
    # Start one execution environment per function before serving (--warm).
    warm: bool = False
    # --env-vars env.json, parsed: {"Parameters" | function id or name: {VAR: value}}.
    env_vars: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Deliver a stream read's records of different items interleaved (--stream-reorder).
    stream_reorder: bool = False
    stream_reorder_seed: int | None = None
    quiet: bool = False
    log_level: str = "INFO"
    # Each function's AWS and @connections calls are checked against its role (--no-iam: not).
    iam: bool = True
    # Browser origins whose pages may open WebSockets, beside the emulator's own (--allow-origin).
    allowed_origins: tuple[str, ...] = ()
    # Listening on a non-loopback --host exposes the admin and token endpoints: only when asked for.
    allow_remote: bool = False
    # Event lines on stdout: "text" for people, "json" (one object a line) for tools.
    log_format: str = "text"

    def __post_init__(self) -> None:
        object.__setattr__(self, "template", Path(self.template))
        if self.static_dir is not None:
            object.__setattr__(self, "static_dir", Path(self.static_dir))
        object.__setattr__(self, "parameter_overrides", _frozen(self.parameter_overrides))
        object.__setattr__(self, "ssm_parameters", _frozen(self.ssm_parameters))
        object.__setattr__(self, "dev_token_claims", _frozen(self.dev_token_claims))
        object.__setattr__(self, "dev_users", tuple(self.dev_users))
        object.__setattr__(self, "env_vars", _frozen({k: _frozen(v) for k, v in self.env_vars.items()}))
        object.__setattr__(self, "log_level", self.log_level.upper())
        object.__setattr__(self, "allowed_origins", tuple(self.allowed_origins))
        self._validate()

    def _validate(self) -> None:
        if not self.template.is_file():
            raise ConfigError(f"--template: no such file: {self.template}")
        self._validate_ports()
        self._validate_numbers()
        for option, url in (
            ("--dynamodb-endpoint", self.dynamodb_endpoint),
            ("--localstack", self.aws_endpoint),
        ):
            # "localstack" alone means: find LocalStack as localstack-client does (LOCALSTACK_HOST...).
            if url is None or (option == "--localstack" and url == LOCALSTACK):
                continue
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                raise ConfigError(f"{option}: {url!r} is not an http(s) URL")
        if self.dev_users and not self.dev_token_secret:
            raise ConfigError("--dev-users needs --dev-token-secret to mint their tokens")
        if self.dev_token_secret is not None and self.dev_token_secret != DEV_TOKEN_SECRET:
            raise ConfigError(
                "--dev-token-secret: the development token endpoint mints a token for anyone who asks, so "
                "it only runs with the built-in development secret "
                f"{DEV_TOKEN_SECRET!r} (ws_emulator.gateway.devtokens.DEV_TOKEN_SECRET); give your local "
                "authorizer that secret, and mint tokens for other secrets with `ws-emulator token`"
            )
        if self.static_dir is not None and not self.static_dir.is_dir():
            raise ConfigError(f"--static-dir: no such directory: {self.static_dir}")
        if self.stage is not None and (not self.stage or "/" in self.stage):
            raise ConfigError(f"--stage: {self.stage!r} is not a stage name")
        if not isinstance(logging.getLevelName(self.log_level), int):
            raise ConfigError(f"--log-level: unknown level {self.log_level!r}")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"--log-format: expected text or json, got {self.log_format!r}")
        self._validate_exposure()

    def _validate_exposure(self) -> None:
        for origin in self.allowed_origins:
            if normalize_origin(origin) is None:
                raise ConfigError(
                    f"--allow-origin: {origin!r} is not an origin (scheme://host[:port], no path), "
                    "e.g. http://localhost:5173"
                )
        if not is_loopback_host(self.host) and not self.allow_remote:
            raise ConfigError(
                f"--host {self.host!r} is not a loopback address: other machines could then reach the "
                "admin endpoints (connections, fault injection, development tokens) and the embedded "
                "services' URLs; pass --allow-remote as well if that is what you want"
            )

    @property
    def remote_warning(self) -> str | None:
        """What to tell the developer when the emulator listens beyond this machine."""
        if is_loopback_host(self.host):
            return None
        tokens = (
            " and the development token endpoint (anyone can mint tokens)" if self.dev_token_secret else ""
        )
        return (
            f"WARNING: listening on {self.host} (--allow-remote): every machine that can reach it can "
            f"use the WebSocket API, the @connections API, the admin endpoints /_emulator/*{tokens}. "
            "There is no authentication on any of them; use it on trusted networks only."
        )

    def _validate_ports(self) -> None:
        for option, port in (("--port", self.port), ("--management-port", self.management_port)):
            if port is not None and not 0 <= port <= 65535:
                raise ConfigError(f"{option}: {port} is not a TCP port (0 to 65535)")
        if self.management_port and self.management_port == self.port:
            raise ConfigError("--management-port must differ from --port")
        if self.port == 65535 and self.management_port is None:
            raise ConfigError("--port 65535 leaves no room for the management port: set --management-port")

    def _validate_numbers(self) -> None:
        positive = {
            "--idle-timeout": self.idle_timeout_s,
            "--max-connection-duration": self.max_connection_duration_s,
            "--ttl-sweep-interval": self.ttl_sweep_interval_s,
            "--connect-rate": self.connect_rate,
            "--shutdown-timeout": self.shutdown_timeout_s,
            "frame limit": self.frame_limit_bytes,
            "message limit": self.message_limit_bytes,
        }
        if self.stream_poll_interval_s is not None:
            positive["--stream-poll-interval"] = self.stream_poll_interval_s
        for option, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{option} must be positive, got {value}")
        if self.frame_limit_bytes > self.message_limit_bytes:
            raise ConfigError("the frame limit cannot exceed the message limit")
        for option, rate in (
            ("--fault-post-gone-rate", self.fault_post_gone_rate),
            ("--fault-post-throttle-rate", self.fault_post_throttle_rate),
            ("--fault-dynamodb-throttle-rate", self.fault_dynamodb_throttle_rate),
            ("--fault-transaction-conflict-rate", self.fault_transaction_conflict_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"{option} must be between 0 and 1, got {rate}")

    @property
    def resolved_management_port(self) -> int:
        """The port asked for the @connections API (0 lets the OS choose)."""
        if self.management_port is not None:
            return self.management_port
        return 0 if self.port == 0 else self.port + 1


def parse_assignments(items: list[str] | None, option: str) -> dict[str, str]:
    """`K=V` pairs from the command line; the value may itself contain '='."""
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option}: expected NAME=VALUE, got {item!r}")
        result[key] = value
    return result
