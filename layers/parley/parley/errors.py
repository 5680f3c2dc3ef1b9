"""Typed domain errors, each carrying the stable error code a client sees."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNKNOWN_ACTION = "unknown_action"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    NOT_JOINED = "not_joined"
    RATE_LIMITED = "rate_limited"
    CONFLICT = "conflict"
    QUOTA_EXCEEDED = "quota_exceeded"
    TOKEN_EXPIRED = "token_expired"
    INTERNAL = "internal"


class ParleyError(Exception):
    """Base of every error a client may be told about; the message is safe to show."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ParleyError):
    code = ErrorCode.BAD_REQUEST


class UnknownAction(ParleyError):
    code = ErrorCode.UNKNOWN_ACTION


class NotFound(ParleyError):
    code = ErrorCode.NOT_FOUND


class Forbidden(ParleyError):
    code = ErrorCode.FORBIDDEN


class NotJoined(ParleyError):
    code = ErrorCode.NOT_JOINED


class Conflict(ParleyError):
    code = ErrorCode.CONFLICT


class QuotaExceeded(ParleyError):
    """A quota (channels, invites, connections, joined channels) is used up: nothing was written."""

    code = ErrorCode.QUOTA_EXCEEDED


class TokenExpired(ParleyError):
    code = ErrorCode.TOKEN_EXPIRED


class RateLimited(ParleyError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, retry_after_ms: int, what: str = "messages") -> None:
        super().__init__(f"too many {what}; retry after {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


class StoreError(Exception):
    """A DynamoDB failure the caller cannot fix (throttling, timeouts): reported as `internal`."""


class StoreThrottled(StoreError):
    """DynamoDB throttled the request after the SDK's own retries."""


class InvalidToken(Exception):
    """A JWT that must not open a connection. The reason is for logs only, never the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailable(Exception):
    """The JWKS could not be fetched or held no usable key set: an outage, not a refused token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
