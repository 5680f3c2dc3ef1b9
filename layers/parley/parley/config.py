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
    jwt_secret_param: str = ""
    jwks_url: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    fanout_concurrency: int = Field(default=32, ge=1, le=256)
    # How long a connection lives without a heartbeat, and the longest a connection can live on AWS.
    heartbeat_timeout_seconds: int = 600
    max_connection_seconds: int = 7200
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
