"""Settings read once from the environment at cold start and validated; logic never reads os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    state_table: str = Field(min_length=1)
    messages_table: str = Field(min_length=1)
    idempotency_table: str = Field(min_length=1)
    connections_endpoint: str = Field(min_length=1)
    presence_queue_url: str = ""
    presence_grace_seconds: int = Field(default=5, ge=0, le=900)
    rate_burst: int = Field(default=20, ge=1)
    rate_per_second: float = Field(default=5.0, gt=0)
    # Every other action's limiter, `action=burst/per_second` comma-separated, over the defaults of
    # parley.ratelimit.ACTION_LIMITS (e.g. "create_channel=5/0.05,invite=10/0.2").
    action_rate_limits: str = ""
    # Quotas (docs/protocol.md, "Limits and quotas"): over one answers `quota_exceeded`.
    max_channels_per_workspace: int = Field(default=1000, ge=0)
    max_channels_per_creator: int = Field(default=100, ge=0)
    max_invites_per_hour: int = Field(default=200, ge=0)
    max_connections_per_user: int = Field(default=20, ge=1, le=1000)
    max_channels_per_connection: int = Field(default=200, ge=1)
    # The authorizer refuses tokens whose `exp` is more than this after their `iat`.
    max_token_lifetime_seconds: int = Field(default=86_400, ge=60)
    jwt_secret_param: str = ""
    jwks_url: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    fanout_concurrency: int = Field(default=32, ge=1, le=256)
    # Two-level fan-out (parley.wide_fanout): channels with more subscribers than the threshold are
    # posted by chunk workers fed through a FIFO queue. 0 or no queue URL: every channel posts directly.
    wide_fanout_threshold: int = Field(default=0, ge=0)
    wide_fanout_chunk_size: int = Field(default=500, ge=1, le=10_000)
    wide_fanout_groups: int = Field(default=32, ge=1, le=10_000)
    wide_fanout_queue_url: str = ""
    # How long a connection lives without a heartbeat, and the longest a connection can live on AWS.
    heartbeat_timeout_seconds: int = 600
    max_connection_seconds: int = 7200
    # the EventBridge bus domain events go to (parley.domain_events); only that function sets it
    event_bus_name: str = ""
    # set by Lambda; part of every idempotency key (Powertools' own default when unset)
    aws_lambda_function_name: str = "test-func"

    @model_validator(mode="after")
    def _jwks_needs_issuer_and_audience(self) -> Settings:
        # A JWKS (Cognito, Auth0) signs the tokens of every app of that identity provider: without
        # an issuer and an audience to check, any of them would open a connection. template.yaml's
        # Rules refuse such a deploy; this refuses such a container (the emulator, a hand-made env).
        if self.jwks_url:
            missing = [name.upper() for name in ("jwt_issuer", "jwt_audience") if not getattr(self, name)]
            if missing:
                raise ValueError(f"JWKS_URL is set, so {' and '.join(missing)} must be set too")
        return self

    @model_validator(mode="after")
    def _action_rate_limits_parse(self) -> Settings:
        from parley.ratelimit import parse_limits

        parse_limits(self.action_rate_limits)  # a ValueError names the bad entry
        return self

    def rate_limit(self, action: str) -> tuple[int, float]:
        """(burst, per second) of `action`'s limiter: `message` from RATE_BURST and RATE_PER_SECOND."""
        from parley.ratelimit import ACTION_LIMITS, parse_limits

        if action == "message":
            return self.rate_burst, self.rate_per_second
        return parse_limits(self.action_rate_limits).get(action, ACTION_LIMITS[action])

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            fields = [str(e["loc"][0]).upper() for e in exc.errors() if e["loc"]]
            rules = [str(e["ctx"]["error"]) for e in exc.errors() if not e["loc"] and "ctx" in e]
            problems = [f"check environment variables {fields}"] if fields else []
            raise RuntimeError(f"Parley is misconfigured: {'; '.join(problems + rules)}") from None


@cache
def settings() -> Settings:
    return Settings.from_env(os.environ)
